// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for the page-table engine on kernel pages: every format,
// map/lookup/age/protect/split/collapse/unmap with table pages counted and
// freed, the leaves unmap() reports, a caller's own table cache, the
// partial-failure contract when the table cache runs dry, and the MMU-lock
// assertions (lockdep) of every operation.
#include <kvmmu/platform.h>

#include "../mmu/pgtable/pgtable.hpp"

#include "kt.hpp"

using namespace kvmmu;
using namespace kvmmu::pgt;

namespace {

class CountingOps final : public CachedMmOps {
public:
	explicit CountingOps(TableCache &c) : CachedMmOps(c) {}
	void flush_tlb_range(u64, u64) override { flushes++; }
	unsigned flushes = 0;
};

// What unmap() reported: how many leaves and bytes, how many young or
// dirty, and the first leaf in full.
class CountingSink final : public LeafSink {
public:
	void removed(u64 ia, u64 size, u64 oa, Attrs attrs, bool young, bool dirty) override
	{
		if (!n) {
			first_ia = ia;
			first_size = size;
			first_oa = oa;
			first_attrs = attrs;
		}
		n++;
		bytes += size;
		n_young += young;
		n_dirty += dirty;
	}
	void reset() { *this = CountingSink(); }

	unsigned n = 0, n_young = 0, n_dirty = 0;
	u64 bytes = 0, first_ia = 0, first_size = 0, first_oa = 0;
	Attrs first_attrs;
};

template <class F>
void pgtable_ops(void *kt)
{
	using PT = PageTable<F>;
	const u64 page = F::size_of(0);
	const u64 block = F::size_of(1); // 2M, 32M or 512M
	RwLock lock;
	KVMMU_LOCK_INIT(lock);
	TableCache cache(PT::table_alloc_bytes());
	CountingOps ops(cache);

	auto r = PT::create(ops, lock, gfp::kernel);
	KT_EXPECT(r.ok());
	if (!r.ok())
		return;
	PT *pt = r.value();
	const Attrs rw{kRead | kWrite, MemType::normal_wb};

	// A block where alignment allows, base pages elsewhere.
	const u64 ia = 4 * block, pa = 8 * block;
	KT_EXPECT(cache.topup(PT::tables_for(block + 3 * page), gfp::kernel).ok());
	{
		ReadGuard g(lock);
		u64 done = 0;
		KT_EXPECT(pt->map(ia, block + 3 * page, pa, rw, &done).ok());
		KT_EXPECT_EQ(done, block + 3 * page);
		Leaf b = pt->get_leaf(ia + 5 * page);
		KT_EXPECT(b.mapped);
		KT_EXPECT_EQ(b.level, 1u);
		KT_EXPECT_EQ(b.oa, pa + 5 * page);
		KT_EXPECT(b.attrs == rw);
		Leaf p = pt->get_leaf(ia + block + 2 * page);
		KT_EXPECT(p.mapped);
		KT_EXPECT_EQ(p.level, 0u);
		KT_EXPECT_EQ(p.oa, pa + block + 2 * page);
		KT_EXPECT(!pt->get_leaf(ia + block + 3 * page).mapped);
		KT_EXPECT(!pt->get_leaf(ia - page).mapped);
		// Fresh leaves are young; aging reports that once.
		auto y = pt->test_clear_young(ia, block);
		KT_EXPECT(y.ok() && y.value());
		auto y2 = pt->test_clear_young(ia, block);
		KT_EXPECT(y2.ok() && !y2.value());
	}
	// A caller's own cache, as each vCPU has one: map() takes its tables
	// from it, not from the MmOps' cache. On the heap: two caches on the
	// stack push this frame past the debug kernels' 2 KiB limit.
	TableCache *mine_p = make<TableCache>(gfp::kernel, PT::table_alloc_bytes());
	KT_EXPECT(mine_p != nullptr);
	if (!mine_p) {
		destroy(pt);
		return;
	}
	TableCache &mine = *mine_p;
	const u64 ia2 = ia + 2 * block, pa2 = pa + 2 * block + page;
	KT_EXPECT(mine.topup(PT::tables_for(2 * page) + 1, gfp::kernel).ok());
	{
		ReadGuard g(lock);
		const unsigned shared = cache.count(), own = mine.count();
		u64 done = 0;
		KT_EXPECT(pt->map(ia2, 2 * page, pa2, rw, &done, &mine).ok());
		KT_EXPECT_EQ(done, 2 * page);
		KT_EXPECT_EQ(cache.count(), shared);
		KT_EXPECT(mine.count() < own);
		KT_EXPECT_EQ(pt->get_leaf(ia2 + page).oa, pa2 + page);
		// New permissions, same output and memory type: written in place
		// on every format (no break-before-make), one invalidation.
		const u64 bbm = pt->stats().bbm;
		const unsigned flushes = ops.flushes;
		KT_EXPECT(pt->map(ia2, 2 * page, pa2, Attrs{kRead, MemType::normal_wb}, nullptr, &mine).ok());
		KT_EXPECT(!(pt->get_leaf(ia2 + page).attrs.prot & kWrite));
		KT_EXPECT_EQ(pt->stats().bbm, bbm);
		KT_EXPECT_EQ(ops.flushes, flushes + 1);
	}
	{
		WriteGuard g(lock);
		KT_EXPECT(pt->unmap(ia2, 2 * page).ok());
	}
	{
		WriteGuard g(lock);
		unsigned before = ops.flushes;
		KT_EXPECT(pt->wrprotect(ia, block + 3 * page).ok());
		KT_EXPECT_EQ(ops.flushes, before + 1); // one batched invalidation
		KT_EXPECT(!(pt->get_leaf(ia).attrs.prot & kWrite));
		// Split the block to base pages and collapse it back.
		KT_EXPECT(cache.topup(4, gfp::atomic | gfp::nowarn).ok() || cache.count() > 0);
		u64 done = 0;
		KT_EXPECT(pt->split(ia, block, 0, &done).ok());
		KT_EXPECT_EQ(pt->get_leaf(ia + 7 * page).level, 0u);
		KT_EXPECT_EQ(pt->get_leaf(ia + 7 * page).oa, pa + 7 * page);
		KT_EXPECT(pt->collapse(ia, 1).ok());
		KT_EXPECT_EQ(pt->get_leaf(ia + 7 * page).level, 1u);
		KT_EXPECT(pt->stats().bbm >= 2);
		// One page of the (old, clean, read-only) block: split with a
		// table from the caller's cache, only that page reported.
		CountingSink sink;
		const unsigned own = mine.count();
		KT_EXPECT(pt->unmap(ia + page, page, &sink, &mine).ok());
		KT_EXPECT_EQ(mine.count(), own - 1);
		KT_EXPECT_EQ(sink.n, 1u);
		KT_EXPECT_EQ(sink.first_ia, ia + page);
		KT_EXPECT_EQ(sink.first_size, page);
		KT_EXPECT_EQ(sink.first_oa, pa + page);
		KT_EXPECT(sink.first_attrs == (Attrs{kRead, MemType::normal_wb}));
		KT_EXPECT_EQ(sink.n_young, 0u);
		KT_EXPECT_EQ(sink.n_dirty, 0u);
		// Unmapping everything leaves only the root; every leaf is
		// reported, the three pages past the block (never aged) young.
		sink.reset();
		KT_EXPECT(pt->unmap(ia, block + 3 * page, &sink).ok());
		KT_EXPECT_EQ(sink.n, unsigned(block / page) + 2);
		KT_EXPECT_EQ(sink.bytes, block + 2 * page);
		KT_EXPECT_EQ(sink.first_ia, ia);
		KT_EXPECT_EQ(sink.n_young, 3u);
		KT_EXPECT_EQ(sink.n_dirty, 0u);
		KT_EXPECT(!pt->get_leaf(ia).mapped);
		KT_EXPECT_EQ(pt->stats().tables, u64(1));
	}
	// Bad input changes nothing.
	{
		ReadGuard g(lock);
		KT_EXPECT(!pt->map(ia + 1, page, pa, rw).ok());
		KT_EXPECT(!pt->map(ia, 0, pa, rw).ok());
		KT_EXPECT(!pt->map(ia, page, pa, Attrs{0, MemType::normal_wb}).ok());
		KT_EXPECT(!pt->map(PT::kIaLimit - page, 2 * page, pa, rw).ok());
		KT_EXPECT_EQ(pt->stats().tables, u64(1));
	}
	// The cache runs dry: map stops, says how far it got, nothing leaks.
	cache.drain();
	{
		ReadGuard g(lock);
		u64 done = ~u64(0);
		auto m = pt->map(ia + page, 2 * page, pa, rw, &done);
		KT_EXPECT(!m.ok() && m.error() == Errno::nomem);
		KT_EXPECT_EQ(done, u64(0));
		KT_EXPECT(!pt->get_leaf(ia + page).mapped);
	}
	destroy(pt);
	cache.drain();
	destroy(mine_p);
}

// The entry of `pt` at `level` for `ia` (the tables exist).
template <class F>
u64 *entry_at(PageTable<F> *pt, u64 ia, unsigned level)
{
	auto *t = static_cast<u64 *>(kvmmu_plat_phys_to_virt(pt->root_pa()));
	for (unsigned l = F::levels - 1;; l--) {
		u64 *e = &t[(ia >> F::shift_of(l)) & ((u64(1) << F::bits_at(l)) - 1)];
		if (l == level)
			return e;
		t = static_cast<u64 *>(kvmmu_plat_phys_to_virt(F::oa(F::load(*e), l)));
	}
}

// Table pages on real struct pages: the engine never touches their
// reference counts, so a speculative reference (get_page_unless_zero on a
// recycled pfn) held while a table is emptied neither keeps the table from
// being freed nor underflows: the holder's put_page() frees it. zap()
// drops a block the range cuts, with no table memory.
template <class F>
void table_pages(void *kt)
{
	using PT = PageTable<F>;
	const u64 page = F::size_of(0), block = F::size_of(1);
	RwLock lock;
	KVMMU_LOCK_INIT(lock);
	TableCache cache(PT::table_alloc_bytes());
	CountingOps ops(cache);
	auto r = PT::create(ops, lock, gfp::kernel);
	KT_EXPECT(r.ok());
	if (!r.ok())
		return;
	PT *pt = r.value();
	const Attrs rw{kRead | kWrite, MemType::normal_wb};
	const u64 ia = 4 * block, pa = 8 * block;
	KT_EXPECT(cache.topup(PT::tables_for(block + page), gfp::kernel).ok());
	{
		WriteGuard g(lock);
		KT_EXPECT(pt->map(ia, page, pa, rw, nullptr, &cache).ok());
		void *table = kvmmu_plat_phys_to_virt(F::oa(F::load(*entry_at(pt, ia, 1)), 1));
		KT_EXPECT_EQ(kvmmu_kt_page_count(table), 1); // ours alone, whatever its entries
		kvmmu_kt_page_get(table);
		const u64 tables = pt->stats().tables;
		KT_EXPECT(pt->unmap(ia, page).ok());
		KT_EXPECT(pt->stats().tables < tables); // emptied tables freed
		KT_EXPECT_EQ(kvmmu_kt_page_count(table), 1); // the speculative one
		kvmmu_kt_page_put(table); // frees it; DEBUG_VM checks the page
	}
	if (F::leaf_ok(1)) {
		KT_EXPECT(cache.topup(PT::tables_for(block), gfp::kernel).ok());
		WriteGuard g(lock);
		KT_EXPECT(pt->map(ia, block, pa, rw, nullptr, &cache).ok());
		cache.drain();
		KT_EXPECT(pt->zap(ia + 3 * page, page).ok());
		KT_EXPECT(!pt->get_leaf(ia).mapped);
		KT_EXPECT(!pt->get_leaf(ia + block - page).mapped);
	}
	destroy(pt);
	cache.drain();
}

} // namespace

KT_TEST(mmu_pgtable, ept4) { pgtable_ops<Ept4>(kt); }
KT_TEST(mmu_pgtable, ept5) { pgtable_ops<Ept5>(kt); }
KT_TEST(mmu_pgtable, arm64_s2_4k_3level) { pgtable_ops<ArmS2_4K_L3>(kt); }
KT_TEST(mmu_pgtable, arm64_s2_4k_4level) { pgtable_ops<ArmS2_4K_L4>(kt); }
KT_TEST(mmu_pgtable, arm64_s2_16k) { pgtable_ops<ArmS2_16K_L3>(kt); }
KT_TEST(mmu_pgtable, arm64_s2_64k) { pgtable_ops<ArmS2_64K_L3>(kt); }
KT_TEST(mmu_pgtable, ppc_radix_4k) { pgtable_ops<PpcRadix4K>(kt); }
KT_TEST(mmu_pgtable, ppc_radix_64k) { pgtable_ops<PpcRadix64K>(kt); }
KT_TEST(mmu_pgtable, table_pages_ept4) { table_pages<Ept4>(kt); }
KT_TEST(mmu_pgtable, table_pages_arm64_s2_4k) { table_pages<ArmS2_4K_L4>(kt); }
KT_TEST(mmu_pgtable, table_pages_ppc_radix_64k) { table_pages<PpcRadix64K>(kt); }
