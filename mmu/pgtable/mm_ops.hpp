// SPDX-License-Identifier: GPL-2.0
// What a page table needs from its user: table memory, table reference
// counts, address conversion, TLB invalidation and cache maintenance.
#pragma once

#include <kvmmu/alloc.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/util.hpp>

namespace kvmmu::pgt {

class MmOps {
public:
	// A zeroed table of `bytes` (a power of two), aligned to its size, with
	// a reference count of 1. Called under the MMU lock: implementations
	// must not sleep (draw from a cache filled beforehand). nullptr: dry.
	virtual void *alloc_table(size_t bytes) = 0;
	// Gives back a table that was never made reachable, whatever its count.
	virtual void unused_table(void *table, size_t bytes) = 0;
	// Frees a table that was reachable, whatever its count; called only
	// after the TLB invalidation that made it unreachable to walkers.
	virtual void free_table(void *table, size_t bytes) = 0;
	// A table's count is 1 + its valid entries.
	virtual void get_table(void *table, unsigned n = 1) = 0;
	virtual unsigned put_table(void *table) = 0; // returns the new count
	virtual unsigned table_refs(void *table) = 0;

	virtual u64 to_phys(const void *va) = 0;
	virtual void *to_virt(u64 pa) = 0;

	// Invalidate cached translations of [ia, ia + size), walk caches
	// included. Page-table operations batch these: one call per operation
	// unless break-before-make needs one at once.
	virtual void flush_tlb_range(u64 ia, u64 size) = 0;
	// The same for a range whose translations were all leaves of one
	// lookup level, `arch_level` in the architecture's numbering from the
	// root (a hint some TLBs take: arm64's TTL).
	virtual void flush_tlb_leaves(u64 ia, u64 size, unsigned arch_level)
	{
		(void)arch_level;
		flush_tlb_range(ia, size);
	}
	// Make table writes visible to a walker that does not snoop caches.
	virtual void sync_table(void *va, size_t len) { (void)va, (void)len; }

protected:
	~MmOps() = default;
};

// Pre-allocated table memory, filled outside the MMU lock (may sleep) and
// drawn from under it (never sleeps), like KVM's memory caches. Chunks
// are page-allocator pages carrying the table's count in the page
// (kvmmu_plat_table_count_*), never in its reference count. Not
// thread-safe: one per caller (a vCPU's fault path, the MMU notifier...).
class TableCache : Pinned {
public:
	static constexpr unsigned kCapacity = 64;

	explicit TableCache(size_t chunk_bytes) : chunk_(chunk_bytes) {}
	~TableCache() { drain(); }

	size_t chunk_bytes() const { return chunk_; }
	unsigned count() const { return n_; }

	// Fills the cache up to `min` chunks (at most kCapacity). On -ENOMEM the
	// chunks allocated so far stay in the cache.
	Result<void> topup(unsigned min, Gfp gfp);
	void *pop() { return n_ ? objs_[--n_] : nullptr; }
	// Returns a zeroed chunk with a count of 1; frees it when full.
	void push(void *p);
	// Returns a chunk that was used (a table never made reachable): its
	// count goes back to 1 and its memory is zeroed before push().
	void recycle(void *p);
	void drain();
	static void free_chunk(void *p, size_t bytes);

private:
	unsigned order() const;

	size_t chunk_;
	unsigned n_ = 0;
	void *objs_[kCapacity] = {};
};

// The usual MmOps: tables from a TableCache, counts kept in the table pages
// apart from their reference counts, addresses through the platform's linear map. TLB
// invalidation is the user's: it depends on who walks the table.
class CachedMmOps : public MmOps {
public:
	explicit CachedMmOps(TableCache &cache) : cache_(cache) {}

	void *alloc_table(size_t bytes) override;
	void unused_table(void *table, size_t bytes) override;
	void free_table(void *table, size_t bytes) override;
	void get_table(void *table, unsigned n) override;
	unsigned put_table(void *table) override;
	unsigned table_refs(void *table) override;
	u64 to_phys(const void *va) override;
	void *to_virt(u64 pa) override;

protected:
	~CachedMmOps() = default;

private:
	TableCache &cache_;
};

} // namespace kvmmu::pgt
