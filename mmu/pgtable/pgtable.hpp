// SPDX-License-Identifier: GPL-2.0
// A host-owned page table in one architecture's format, and the operations
// on it: map, unmap, write-protect, test-and-clear-young, leaf lookup,
// split and collapse. One generic walker serves every format (format.hpp).
//
// Locking: the caller's MMU lock (an RwLock given at creation).
//   shared    map(), test_clear_young(), get_leaf()
//   exclusive unmap(), wrprotect(), split(), collapse(), destruction
// Entries are published with compare-and-exchange against the value the
// walker read, so shared-mode operations can run in parallel; a lost race
// is retried (tables, accessed bits); a different leaf where map() wants
// one is replaced through break_before_make(); an entry another thread
// holds locked (between break and make) makes map() return -EAGAIN.
// A table map() creates is private until it is linked: map() fills it
// (and the tables it creates below it) with plain stores for everything
// the range puts there, then links it with one compare-and-exchange.
//
// Memory: map(), split() and unmap() (which needs a table only to split a
// block it covers in part) draw table memory from the `cache` argument if
// it is given, else from MmOps::alloc_table(); neither may sleep. When it
// runs dry they stop with -ENOMEM; map() and split() report how far they
// got: [ia, ia + *done) is done, the rest is untouched. Tables that never
// became reachable go back where they came from. A TableCache is not
// thread-safe: parallel map() callers (vCPU faults) each pass their own;
// MmOps' own allocator serves callers that hold the lock exclusively or
// are otherwise serialised. Tables from a `cache` are page-allocator
// chunks counted in their pages, so the MmOps must count and free those
// (CachedMmOps does). map() rejects output addresses the format cannot
// encode (-EINVAL).
// Emptied tables are freed by unmap(), after the operation's TLB
// invalidations (one per run of adjacent changed ranges: exactly what
// changed; one for a contiguous range). Table entries are counted, not scanned.
//
// Replacing a valid entry goes through break_before_make(): for formats
// that require it (arm64) and whenever the mapping size changes (split,
// collapse), the entry is first made invalid ("locked"), the TLB is
// invalidated, and only then is the new entry written.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/types.hpp>

#include "format.hpp"
#include "mm_ops.hpp"

namespace kvmmu::pgt {

struct Leaf {
	bool mapped = false;
	unsigned level = 0;	// 0: base page; >0: block
	u64 ia = 0;		// start of the leaf's range
	u64 size = 0;
	u64 oa = 0;		// output address of `ia`
	Attrs attrs;
	bool young = false;
	bool dirty = false;
};

constexpr unsigned kMaxLevels = 5;

struct PtStats {
	u64 leaves[kMaxLevels] = {}; // valid leaves now, by level (0: base pages)
	u64 tables = 0;		// live table allocations (root included)
	u64 table_bytes = 0;
	u64 tlb_flushes = 0;	// flush_tlb_range calls
	u64 bbm = 0;		// break-before-make sequences
	u64 lost_races = 0;	// new tables given back: the entry changed before they were linked
};

// What unmap() removed, leaf by leaf: the last value of each leaf, read by
// the atomic exchange that cleared it, so accessed/dirty state the
// hardware set up to that moment is included (the caller transfers it to
// the pages: set_page_dirty, mark_page_accessed). `ia` and `size` are the
// leaf's whole range, `oa` the output address of `ia`. A block unmapped
// in part is split first; only its removed pieces are reported, each
// with the block's state. Called under the MMU lock (exclusive; must not
// sleep), before the TLB invalidation: the removed translations may still
// be in use until unmap() returns.
struct LeafSink {
	virtual void removed(u64 ia, u64 size, u64 oa, Attrs attrs, bool young, bool dirty) = 0;

protected:
	~LeafSink() = default;
};

// How map() treats a leaf of the same output address and size that is
// already there: `replace` gives it exactly the new attributes; `add_rights`
// (faults) keeps every permission it has and adds the new ones, so a
// parallel fault asking for less never takes rights (and, with them, a
// hardware dirty bit) away. Memory type and host_page are never merged: a
// leaf that differs in those is replaced.
enum class MapMode : u8 { replace, add_rights };

template <class F>
class PageTable : Pinned {
public:
	static constexpr unsigned kRootLevel = F::levels - 1;
	static constexpr u64 kIaLimit = F::ia_bits >= 64 ? ~u64(0) : u64(1) << F::ia_bits;

	// Bytes of every non-root table allocation: fill TableCaches with this.
	static constexpr size_t table_alloc_bytes();
	// Upper bound of tables one map() of `size` bytes can need.
	static unsigned tables_for(u64 size);

	// Process context (allocates the root with `gfp`).
	static Result<PageTable *> create(MmOps &ops, RwLock &mmu_lock, Gfp gfp);
	// Frees every table. No concurrent users; one TLB invalidation.
	~PageTable();

	// `cache` (optional): the caller's own table memory; see above.
	Result<void> map(u64 ia, u64 size, u64 pa, Attrs attrs, u64 *done = nullptr,
			 TableCache *cache = nullptr, MapMode mode = MapMode::replace);
	// Every leaf removed goes to `sink` (optional), also when unmap() fails
	// with -ENOMEM after removing some.
	Result<void> unmap(u64 ia, u64 size, LeafSink *sink = nullptr, TableCache *cache = nullptr);
	// Like unmap(), but every leaf that overlaps the range goes whole,
	// also a block that reaches beyond it: what invalidation needs (the
	// next fault maps back what stays valid). Never splits, so it needs no
	// memory and fails only for a range the format cannot hold (-EINVAL).
	Result<void> zap(u64 ia, u64 size, LeafSink *sink = nullptr);
	// `dirty`, if given, is told of every leaf that was dirty when it lost
	// its write permission (formats whose dirty state is the write
	// permission, or whose protection clears the dirty bit, lose it then).
	Result<void> wrprotect(u64 ia, u64 size, LeafSink *dirty = nullptr);
	Result<bool> test_clear_young(u64 ia, u64 size);
	// The leaf translating `ia`; Leaf::oa is the output address of `ia`.
	Leaf get_leaf(u64 ia);
	// Splits leaves larger than `level` in the range down to `level`.
	Result<void> split(u64 ia, u64 size, unsigned level, u64 *done = nullptr,
			   TableCache *cache = nullptr);
	// Replaces the table at `level` covering `ia` by one block, if all of
	// its children are leaves one level down mapping one contiguous,
	// aligned range with equal attributes. -EINVAL otherwise. The block is
	// young/dirty if any child was when it was replaced.
	Result<void> collapse(u64 ia, unsigned level);

	PtStats stats() const;
	u64 root_pa() const { return ops_.to_phys(root_); }

	// Walk machinery, public for the visitors in pgtable_impl.hpp.
	struct Ctx;
	struct Op;

private:
	template <class T, class... Args> friend T *kvmmu::make(Gfp, Args &&...);
	PageTable(MmOps &ops, RwLock &lock, void *root) : ops_(ops), lock_(lock), root_(root) {}

	enum class Step { next, descend, retry };

	template <class V>
	Result<void> run(u64 ia, u64 size, V &v, u64 *done = nullptr, TableCache *cache = nullptr,
			 LeafSink *sink = nullptr);
	template <class V> Result<void> walk(Op &op, V &v);
	template <class V> Result<void> walk_table(Op &op, void *table, unsigned level, u64 base, V &v);
	Result<Step> visit_map(Op &op, Ctx &c, u64 pa, Attrs attrs, MapMode mode);
	Result<Step> build_table(Op &op, Ctx &c, u64 pa, Attrs attrs);
	Result<void> fill_table(Op &op, void *table, unsigned level, u64 base, u64 pa, Attrs attrs,
				u64 &reached);
	Result<Step> visit_unmap(Op &op, Ctx &c, bool whole_leaves);
	Result<void> remove(u64 ia, u64 size, LeafSink *sink, TableCache *cache, bool whole_leaves);
	void post_unmap(Op &op, Ctx &c);
	void report_leaf(Op &op, u64 e, u64 ia, unsigned level);
	void report_subtree(Op &op, void *table, unsigned level, u64 base);
	Result<Step> visit_wrprotect(Op &op, Ctx &c);
	Result<Step> visit_age(Op &op, Ctx &c, bool &young);
	Result<Step> visit_split(Op &op, Ctx &c, unsigned to_level);
	Result<Step> split_leaf(Op &op, Ctx &c);
	void *new_table(Op &op);
	void unused_table(Op &op, void *table);
	void unused_subtree(Op &op, void *table, unsigned level);
	void free_table(Op &op, void *table, unsigned level);
	void free_subtree(Op &op, void *table, unsigned level);
	void drop_table(void *table, unsigned level);
	bool publish(Ctx &c, u64 e);
	bool break_before_make(Op &op, Ctx &c, u64 e);
	bool break_entry(Ctx &c);
	void make_entry(Ctx &c, u64 e);
	void note_flush(Op &op, u64 ia, u64 size, int leaf_level = -1);
	static constexpr unsigned arch_level(unsigned level);
	bool noted(const Op &op, u64 ia, u64 size) const;
	void finish(Op &op);
	Result<void> check_range(u64 ia, u64 size) const;

	MmOps &ops_;
	RwLock &lock_;
	void *root_;
	// Leaves by level: changed where entries become or stop being leaves
	// (publication, break-before-make, private fills, unmap, and freeing
	// tables, which count their leaves from their reference counts).
	Atomic<u64> leaves_[F::levels];
	void count_leaves(unsigned level, s64 n)
	{
		if (n)
			leaves_[level].fetch_add(u64(n), Order::relaxed);
	}
	s64 leaf_delta(unsigned level, u64 old_e, u64 new_e) const
	{
		return s64(F::leaf(new_e, level)) - s64(F::leaf(old_e, level));
	}
	Atomic<u64> tables_;
	Atomic<u64> table_bytes_;
	Atomic<u64> tlb_flushes_;
	Atomic<u64> bbm_;
	Atomic<u64> lost_races_;
};

} // namespace kvmmu::pgt
