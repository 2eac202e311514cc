// SPDX-License-Identifier: GPL-2.0
#include "mm_ops.hpp"

#include <kvmmu/platform.h>
#include <kvmmu/types.hpp>

namespace kvmmu::pgt {

unsigned TableCache::order() const
{
	unsigned o = 0;
	while ((kPageSize << o) < chunk_)
		o++;
	return o;
}

Result<void> TableCache::topup(unsigned min, Gfp gfp)
{
	if (min > kCapacity)
		return Errno::inval;
	while (n_ < min) {
		void *p = kvmmu_plat_alloc_pages(order(), (gfp | gfp::zero).raw());
		if (!p)
			return Errno::nomem;
		kvmmu_plat_table_count_set(p, 1);
		objs_[n_++] = p;
	}
	return {};
}

void TableCache::free_chunk(void *p, size_t bytes)
{
	unsigned o = 0;
	while ((kPageSize << o) < bytes)
		o++;
	// The table's own count, not the page's reference count: whoever
	// holds the last page reference frees the page.
	kvmmu_plat_table_count_set(p, 0);
	kvmmu_plat_free_pages(p, o);
}

void TableCache::push(void *p)
{
	if (n_ == kCapacity) {
		free_chunk(p, chunk_);
		return;
	}
	objs_[n_++] = p;
}

void TableCache::recycle(void *p)
{
	kvmmu_plat_table_count_set(p, 1);
	__builtin_memset(p, 0, chunk_);
	push(p);
}

void TableCache::drain()
{
	while (n_)
		free_chunk(objs_[--n_], chunk_);
}

void *CachedMmOps::alloc_table(size_t bytes)
{
	if (bytes > cache_.chunk_bytes())
		return nullptr;
	return cache_.pop();
}

// Never reachable: no walker saw it; clean it and keep it for later.
void CachedMmOps::unused_table(void *table, size_t bytes)
{
	(void)bytes; // at most the cache's chunk, which recycle() clears whole
	cache_.recycle(table);
}

void CachedMmOps::free_table(void *table, size_t bytes)
{
	TableCache::free_chunk(table, bytes);
}

void CachedMmOps::get_table(void *table, unsigned n)
{
	kvmmu_plat_table_count_add_return(table, int(n));
}

unsigned CachedMmOps::put_table(void *table)
{
	return unsigned(kvmmu_plat_table_count_add_return(table, -1));
}

unsigned CachedMmOps::table_refs(void *table)
{
	return unsigned(kvmmu_plat_table_count(table));
}

u64 CachedMmOps::to_phys(const void *va)
{
	return kvmmu_plat_virt_to_phys(va);
}

void *CachedMmOps::to_virt(u64 pa)
{
	return kvmmu_plat_phys_to_virt(pa);
}

} // namespace kvmmu::pgt
