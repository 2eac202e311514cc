// SPDX-License-Identifier: GPL-2.0
// PageTable<F> implementation; instantiated for every format in pgtable.cpp.
#pragma once

#include "pgtable.hpp"

namespace kvmmu::pgt {

template <class F>
struct PageTable<F>::Ctx {
	u64 ia;		// start of the entry's range
	u64 size;	// bytes the entry maps
	unsigned level;
	u64 *ptep;
	void *table;	// the table holding ptep
	u64 old;	// the entry as read (decoded)
	u64 start, end;	// the operation's range
	bool covered() const { return start <= ia && ia + size <= end; }
};

template <class F>
struct PageTable<F>::Op {
	static constexpr unsigned kDeferred = 32;

	u64 start, end;
	u64 done;		// [start, done) is complete
	// Ranges whose entries changed, not yet invalidated: runs of adjacent
	// ranges, in walk order; beyond kRuns the last run grows over the gap.
	static constexpr unsigned kRuns = 8;
	u64 run_lo[kRuns], run_hi[kRuns];
	int run_level[kRuns];	// the leaves' level if all share one, else -1
	unsigned nruns = 0;
	void *deferred[kDeferred];
	unsigned deferred_level[kDeferred];
	unsigned ndeferred = 0;
	TableCache *cache = nullptr;	// the caller's, else MmOps' allocator
	LeafSink *sink = nullptr;	// unmap(): where removed leaves go

	Op(u64 s, u64 e) : start(s), end(e), done(s) {}
};

namespace detail {
constexpr bool aligned(u64 v, unsigned shift) { return !(v & ((u64(1) << shift) - 1)); }
inline u64 load_raw(const u64 *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store_raw(u64 *p, u64 v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
inline bool cmpxchg_raw(u64 *p, u64 &expected, u64 desired)
{
	return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL,
					   __ATOMIC_ACQUIRE);
}
inline u64 xchg_raw(u64 *p, u64 v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
} // namespace detail

template <class F>
constexpr size_t PageTable<F>::table_alloc_bytes()
{
	u64 b = 0;
	for (unsigned l = 0; l + 1 < F::levels; l++)
		b = max<u64>(b, F::table_bytes(l));
	return max<u64>(b, kPageSize);
}

template <class F>
unsigned PageTable<F>::tables_for(u64 size)
{
	// One table per level for the first entry, plus one per level-1 span
	// crossed (a leaf-level table per 2M with 4K granule, ...), plus one
	// more per level for an unaligned end.
	unsigned n = 0;
	for (unsigned l = 0; l + 1 < F::levels; l++)
		n += unsigned(size >> F::shift_of(l + 1)) + 2;
	return n;
}

template <class F>
Result<PageTable<F> *> PageTable<F>::create(MmOps &ops, RwLock &mmu_lock, Gfp gfp)
{
	u64 bytes = max<u64>(F::table_bytes(kRootLevel), 8);
	// The root comes from the caller's context, not from the cache.
	unsigned order = 0;
	while ((kPageSize << order) < bytes)
		order++;
	void *root = kvmmu_plat_alloc_pages(order, (gfp | gfp::zero).raw());
	if (!root)
		return Errno::nomem;
	kvmmu_plat_table_count_set(root, 1);
	auto *pt = make<PageTable>(gfp, ops, mmu_lock, root);
	if (!pt) {
		kvmmu_plat_table_count_set(root, 0);
		kvmmu_plat_free_pages(root, order);
		return Errno::nomem;
	}
	pt->tables_.store(1);
	pt->table_bytes_.store(kPageSize << order);
	return pt;
}

template <class F>
PageTable<F>::~PageTable()
{
	Op op(0, kIaLimit);
	u64 n = u64(1) << F::bits_at(kRootLevel);
	auto *root = static_cast<u64 *>(root_);
	// Nothing may walk this table any more; invalidate once, then free.
	ops_.flush_tlb_range(0, kIaLimit);
	for (u64 i = 0; i < n; i++) {
		u64 e = F::load(root[i]);
		if (F::table(e, kRootLevel))
			drop_table(ops_.to_virt(F::oa(e, kRootLevel)), kRootLevel - 1);
	}
	unsigned order = 0;
	while ((kPageSize << order) < F::table_bytes(kRootLevel))
		order++;
	// The root counts its valid entries too.
	kvmmu_plat_table_count_set(root_, 0);
	kvmmu_plat_free_pages(root_, order);
}

// Frees a subtree whose TLB entries are already gone (destruction).
template <class F>
void PageTable<F>::drop_table(void *table, unsigned level)
{
	auto *t = static_cast<u64 *>(table);
	u64 n = u64(1) << F::bits_at(level);
	// The table's count is 1 + its valid entries, whatever unmap()'s leaf
	// reports cleared since: its leaves are those that are not tables.
	u64 valid = u64(ops_.table_refs(table)) - 1, tables = 0;
	if (level > 0) {
		for (u64 i = 0; i < n; i++) {
			u64 e = F::load(t[i]);
			if (F::table(e, level)) {
				tables++;
				drop_table(ops_.to_virt(F::oa(e, level)), level - 1);
			}
		}
	}
	count_leaves(level, -s64(valid - tables));
	ops_.free_table(table, table_alloc_bytes());
	tables_.fetch_sub(1);
	table_bytes_.fetch_sub(table_alloc_bytes());
}

template <class F>
PtStats PageTable<F>::stats() const
{
	PtStats s;
	for (unsigned l = 0; l < F::levels && l < kMaxLevels; l++)
		s.leaves[l] = leaves_[l].load(Order::relaxed);
	s.tables = tables_.load();
	s.table_bytes = table_bytes_.load();
	s.tlb_flushes = tlb_flushes_.load();
	s.bbm = bbm_.load();
	s.lost_races = lost_races_.load();
	return s;
}

template <class F>
Result<void> PageTable<F>::check_range(u64 ia, u64 size) const
{
	if (!size || !detail::aligned(ia, F::page_shift) || !detail::aligned(size, F::page_shift) ||
	    ia >= kIaLimit || size > kIaLimit - ia)
		return Errno::inval;
	return {};
}

// ---------------------------------------------------------------------------
// The walker
// ---------------------------------------------------------------------------
template <class F>
template <class V>
Result<void> PageTable<F>::walk(Op &op, V &v)
{
	return walk_table(op, root_, kRootLevel, 0, v);
}

template <class F>
template <class V>
Result<void> PageTable<F>::walk_table(Op &op, void *table, unsigned level, u64 base, V &v)
{
	auto *t = static_cast<u64 *>(table);
	const unsigned shift = F::shift_of(level);
	const u64 size = u64(1) << shift;
	const u64 n = u64(1) << F::bits_at(level);
	u64 first = op.start > base ? (op.start - base) >> shift : 0;

	for (u64 i = first; i < n; i++) {
		u64 ia = base + i * size;
		if (ia >= op.end)
			break;
		Ctx c{ia, size, level, &t[i], table, 0, op.start, op.end};
		Step step;
		do {
			c.old = F::load(detail::load_raw(c.ptep));
			KVMMU_TRY(s, v.visit(*this, op, c));
			step = s;
		} while (step == Step::retry);
		if (step == Step::descend) {
			KVMMU_TRY_VOID(walk_table(op, ops_.to_virt(F::oa(c.old, level)), level - 1, ia, v));
			v.post(*this, op, c);
		}
	}
	return {};
}

// One operation over [ia, ia + size): the walk, then its (last) TLB
// invalidation and the freeing of what it unlinked; *done gets the
// completed prefix.
template <class F>
template <class V>
Result<void> PageTable<F>::run(u64 ia, u64 size, V &v, u64 *done, TableCache *cache, LeafSink *sink)
{
	Op op(ia, ia + size);
	op.cache = cache;
	op.sink = sink;
	auto r = walk(op, v);
	finish(op);
	if (done)
		*done = op.done - ia;
	return r;
}

// Entries changed by the operation are invalidated at its end as runs of
// adjacent ranges, so the TLB is told what changed and not the gaps
// between (up to Op::kRuns runs; a walk over a contiguous range makes
// one). All of them after the last change: a table the operation unlinks
// may have been walked until then.
template <class F>
void PageTable<F>::note_flush(Op &op, u64 ia, u64 size, int leaf_level)
{
	const u64 end = ia + size;
	if (op.nruns) {
		unsigned l = op.nruns - 1;
		if ((ia <= op.run_hi[l] && end >= op.run_lo[l]) || op.nruns == Op::kRuns) {
			op.run_lo[l] = min(op.run_lo[l], ia);
			op.run_hi[l] = max(op.run_hi[l], end);
			if (op.run_level[l] != leaf_level)
				op.run_level[l] = -1;
			return;
		}
	}
	op.run_lo[op.nruns] = ia;
	op.run_level[op.nruns] = leaf_level;
	op.run_hi[op.nruns++] = end;
}

// The architecture's number of the lookup level of a leaf at `level`
// (counted from the root: arm64's TTL hint), for MmOps::flush_tlb_leaves().
template <class F>
constexpr unsigned PageTable<F>::arch_level(unsigned level)
{
	return F::arch_start_level + (F::levels - 1 - level);
}

// Does a noted range meet [ia, ia + size)?
template <class F>
bool PageTable<F>::noted(const Op &op, u64 ia, u64 size) const
{
	for (unsigned i = 0; i < op.nruns; i++)
		if (op.run_lo[i] < ia + size && op.run_hi[i] > ia)
			return true;
	return false;
}

// The operation's TLB invalidations, then the tables it unlinked.
template <class F>
void PageTable<F>::finish(Op &op)
{
	for (unsigned i = 0; i < op.nruns; i++) {
		if (op.run_level[i] >= 0)
			ops_.flush_tlb_leaves(op.run_lo[i], op.run_hi[i] - op.run_lo[i],
					      arch_level(unsigned(op.run_level[i])));
		else
			ops_.flush_tlb_range(op.run_lo[i], op.run_hi[i] - op.run_lo[i]);
		tlb_flushes_.fetch_add(1, Order::relaxed);
	}
	op.nruns = 0;
	for (unsigned i = 0; i < op.ndeferred; i++)
		drop_table(op.deferred[i], op.deferred_level[i]);
	op.ndeferred = 0;
}

// Queues an unlinked table (and what hangs below it) for freeing after the
// invalidation; a full queue forces that invalidation now.
template <class F>
void PageTable<F>::free_table(Op &op, void *table, unsigned level)
{
	if (op.ndeferred == Op::kDeferred)
		finish(op);
	op.deferred[op.ndeferred] = table;
	op.deferred_level[op.ndeferred++] = level;
}

// A zeroed table with a count of 1, from the operation's cache if the
// caller gave one, else from MmOps.
template <class F>
void *PageTable<F>::new_table(Op &op)
{
	void *t;
	if (op.cache)
		t = op.cache->chunk_bytes() >= table_alloc_bytes() ? op.cache->pop() : nullptr;
	else
		t = ops_.alloc_table(table_alloc_bytes());
	if (t) {
		tables_.fetch_add(1, Order::relaxed);
		table_bytes_.fetch_add(table_alloc_bytes(), Order::relaxed);
	}
	return t;
}

// Gives back a table from new_table() that never became reachable, to
// where it came from.
template <class F>
void PageTable<F>::unused_table(Op &op, void *t)
{
	if (op.cache)
		op.cache->recycle(t);
	else
		ops_.unused_table(t, table_alloc_bytes());
	tables_.fetch_sub(1);
	table_bytes_.fetch_sub(table_alloc_bytes());
}

// The same for a private subtree built by fill_table(): every table in it
// is new.
template <class F>
void PageTable<F>::unused_subtree(Op &op, void *table, unsigned level)
{
	auto *t = static_cast<u64 *>(table);
	const u64 n = u64(1) << F::bits_at(level);
	u64 leaves = 0;
	for (u64 i = 0; i < n; i++) {
		u64 e = F::load(t[i]);
		if (level > 0 && F::table(e, level))
			unused_subtree(op, ops_.to_virt(F::oa(e, level)), level - 1);
		else if (F::leaf(e, level))
			leaves++;
	}
	count_leaves(level, -s64(leaves)); // fill_table() counted them
	unused_table(op, table);
}

// Publishes `e` in place of c.old; false if the entry changed meanwhile.
template <class F>
bool PageTable<F>::publish(Ctx &c, u64 e)
{
	u64 expected = F::store(c.old);
	if (!detail::cmpxchg_raw(c.ptep, expected, F::store(e)))
		return false;
	count_leaves(c.level, leaf_delta(c.level, c.old, e));
	if (F::valid(e) && !F::valid(c.old))
		ops_.get_table(c.table);
	else if (!F::valid(e) && F::valid(c.old) && c.old != F::locked())
		ops_.put_table(c.table);
	ops_.sync_table(c.ptep, sizeof(u64));
	c.old = e;
	return true;
}

// Replaces a valid entry. When the format requires it, or the mapping
// granularity changes (leaf <-> table), the entry is made invalid and the
// TLB invalidated before the new entry is written; otherwise the new entry
// is written at once and the invalidation batched with the operation's.
// A leaf that keeps its output address and memory type and changes only
// its permissions needs no break on any format (Arm ARM: permission and
// access-flag changes are not among those requiring break-before-make).
// False if the entry changed under us (retry).
template <class F>
bool PageTable<F>::break_before_make(Op &op, Ctx &c, u64 e)
{
	if (!F::valid(c.old))
		return publish(c, e);
	bool granule_change = F::table(c.old, c.level) != F::table(e, c.level);
	bool perms_only = F::leaf(c.old, c.level) && F::leaf(e, c.level) &&
			  F::oa(c.old, c.level) == F::oa(e, c.level) && F::attrs(c.old).mt == F::attrs(e).mt;
	if ((!F::bbm || perms_only) && !granule_change) {
		if (!publish(c, e))
			return false;
		note_flush(op, c.ia, c.size, F::leaf(c.old, c.level) ? int(c.level) : -1);
		return true;
	}
	const u64 old_e = c.old;
	if (!break_entry(c))
		return false;
	make_entry(c, e);
	count_leaves(c.level, leaf_delta(c.level, old_e, e));
	return true;
}

// Break: the valid entry c.old becomes the locked value and the TLB
// forgets its range at once. False if the entry changed under us. The
// entry's count in its table stays (make_entry() writes a valid one).
template <class F>
bool PageTable<F>::break_entry(Ctx &c)
{
	u64 expected = F::store(c.old);
	if (!detail::cmpxchg_raw(c.ptep, expected, F::store(F::locked())))
		return false;
	ops_.sync_table(c.ptep, sizeof(u64));
	if (F::leaf(c.old, c.level))
		ops_.flush_tlb_leaves(c.ia, c.size, arch_level(c.level));
	else
		ops_.flush_tlb_range(c.ia, c.size);
	tlb_flushes_.fetch_add(1, Order::relaxed);
	bbm_.fetch_add(1, Order::relaxed);
	return true;
}

// Make: the new entry in place of the locked value.
template <class F>
void PageTable<F>::make_entry(Ctx &c, u64 e)
{
	detail::store_raw(c.ptep, F::store(e));
	ops_.sync_table(c.ptep, sizeof(u64));
	c.old = e;
}

// A table of next-level leaves reproducing the leaf c.old, put in its place.
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::split_leaf(Op &op, Ctx &c)
{
	void *t = new_table(op);
	if (!t)
		return Errno::nomem;
	auto *entries = static_cast<u64 *>(t);
	const u64 n = u64(1) << F::bits_at(c.level - 1);
	const u64 child = F::size_of(c.level - 1);
	const Attrs a = F::attrs(c.old);
	const u64 oa = F::oa(c.old, c.level);
	for (u64 i = 0; i < n; i++) {
		u64 e = F::make_leaf(oa + i * child, c.level - 1, a);
		if (!F::young(c.old))
			e = F::mkold(e);
		if (F::dirty(c.old))
			e = F::mkdirty(e);
		entries[i] = F::store(e);
	}
	ops_.get_table(t, unsigned(n));
	ops_.sync_table(t, n * sizeof(u64));
	if (!break_before_make(op, c, F::make_table(ops_.to_phys(t), c.level))) {
		unused_table(op, t);
		lost_races_.fetch_add(1, Order::relaxed);
		return Step::retry;
	}
	count_leaves(c.level - 1, s64(n));
	return Step::descend;
}

// ---------------------------------------------------------------------------
// map
// ---------------------------------------------------------------------------
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::visit_map(Op &op, Ctx &c, u64 pa, Attrs attrs,
							      MapMode mode)
{
	if (c.old == F::locked())
		return Errno::again; // someone is between break and make
	if (F::table(c.old, c.level))
		return Step::descend;

	u64 leaf_pa = pa + (c.ia - c.start);
	if (c.covered() && F::leaf_ok(c.level) && !(leaf_pa & (c.size - 1))) {
		const bool same_oa = F::valid(c.old) && F::leaf(c.old, c.level) &&
				     F::oa(c.old, c.level) == leaf_pa;
		if (same_oa && mode == MapMode::add_rights) {
			// The leaf this entry holds now (read by the walker, the
			// value the exchange below is made against) keeps every
			// permission it has: add ours to it.
			const Attrs o = F::attrs(c.old);
			if (o.mt == attrs.mt && o.host_page == attrs.host_page)
				attrs.prot |= o.prot;
		}
		u64 e = F::make_leaf(leaf_pa, c.level, attrs);
		// Rights only grow here: what the hardware recorded as written
		// stays recorded.
		if (same_oa && mode == MapMode::add_rights && F::dirty(c.old) && (attrs.prot & kWrite))
			e = F::mkdirty(e);
		if (F::valid(c.old)) {
			// Same translation: keep A/D, nothing to do, except that
			// a fault (add_rights) on an old leaf (one whose accessed
			// flag aging cleared: an access-flag fault where the
			// hardware does not set it) makes it young; no break needed.
			if (same_oa && F::attrs(c.old) == attrs) {
				if (mode == MapMode::add_rights && !F::young(c.old) &&
				    !publish(c, F::mkyoung(c.old)))
					return Step::retry;
				op.done = c.ia + c.size;
				return Step::next;
			}
			if (!break_before_make(op, c, e))
				return Step::retry;
		} else if (!publish(c, e)) {
			return Step::retry;
		}
		op.done = c.ia + c.size;
		return Step::next;
	}

	// The range needs smaller leaves here.
	if (F::valid(c.old))
		return split_leaf(op, c);
	return build_table(op, c, pa, attrs);
}

// An empty entry where map() needs a table: build the table, and
// everything under it, while no one else can see it; then link it with
// one compare-and-exchange. Even if the tables ran out on the way, what
// was built is a complete prefix of the range: link it too. Out of line:
// the per-entry path above stays small (it runs once per level per page
// for a fault).
template <class F>
__attribute__((noinline)) Result<typename PageTable<F>::Step>
PageTable<F>::build_table(Op &op, Ctx &c, u64 pa, Attrs attrs)
{
	void *t = new_table(op);
	if (!t)
		return Errno::nomem;
	u64 reached = op.done;
	auto r = fill_table(op, t, c.level - 1, c.ia, pa, attrs, reached);
	if (!publish(c, F::make_table(ops_.to_phys(t), c.level))) {
		// The entry changed (another map() got there first): drop
		// what we built, go by what is there now.
		unused_subtree(op, t, c.level - 1);
		lost_races_.fetch_add(1, Order::relaxed);
		return Step::retry;
	}
	op.done = reached;
	if (!r)
		return r.error();
	return Step::next;
}

// Fills the new table `table` at `level`, covering [base, base + its span),
// with the entries map() wants there for [op.start, op.end): leaves, and
// new tables filled the same way first. The table is not reachable yet, so
// plain stores do (its publication orders them) and its count is taken
// once; its entries are synced for non-snooping walkers here, before the
// caller links it. -ENOMEM when the tables run out: the entries written
// up to then stay (a lower table is linked even if it got none), and
// `reached` is the end of the last leaf written.
template <class F>
Result<void> PageTable<F>::fill_table(Op &op, void *table, unsigned level, u64 base, u64 pa, Attrs attrs,
				      u64 &reached)
{
	auto *t = static_cast<u64 *>(table);
	const unsigned shift = F::shift_of(level);
	const u64 size = u64(1) << shift;
	const u64 n = u64(1) << F::bits_at(level);
	const u64 first = op.start > base ? (op.start - base) >> shift : 0;
	const u64 last = op.end - base >= n * size ? n : (op.end - base + size - 1) >> shift;
	// Entries [lo, hi) lie inside the range; they are leaves here if the
	// level allows and the output address is aligned (the same for every
	// entry of the table).
	const u64 lo = base + first * size >= op.start ? first : first + 1;
	const u64 hi = min(last, (op.end - base) >> shift);
	const bool leaves = F::leaf_ok(level) && !((pa - op.start + base) & (size - 1));
	unsigned count = 0;
	Result<void> r;
	u64 i = first;
	while (i < last) {
		if (leaves && i >= lo && i < hi) {
			u64 leaf_pa = pa + (base + i * size - op.start);
			count += unsigned(hi - i);
			count_leaves(level, s64(hi - i));
			for (; i < hi; i++, leaf_pa += size)
				t[i] = F::store(F::make_leaf(leaf_pa, level, attrs));
			reached = base + hi * size;
			continue;
		}
		// Only an entry the range covers in part, or one that cannot
		// be a leaf, gets here: never at level 0, where base pages
		// always fit.
		void *child = new_table(op);
		if (!child) {
			r = Errno::nomem;
			break;
		}
		r = fill_table(op, child, level - 1, base + i * size, pa, attrs, reached);
		t[i++] = F::store(F::make_table(ops_.to_phys(child), level));
		count++;
		if (!r)
			break;
	}
	if (count)
		ops_.get_table(table, count);
	if (i > first)
		ops_.sync_table(&t[first], (i - first) * sizeof(u64));
	return r;
}

template <class F>
Result<void> PageTable<F>::map(u64 ia, u64 size, u64 pa, Attrs attrs, u64 *done, TableCache *cache,
			       MapMode mode)
{
	if (done)
		*done = 0;
	KVMMU_TRY_VOID(check_range(ia, size));
	if (!F::prot_ok(attrs.prot) || !detail::aligned(pa, F::page_shift) || pa + size < pa)
		return Errno::inval;
	// Leaves keep only the address bits the format has: an output address
	// beyond them would silently map something else.
	const u64 last = pa + size - F::size_of(0);
	if (F::oa(F::make_leaf(last, 0, attrs), 0) != last)
		return Errno::inval;
	lock_.assert_held();

	struct V {
		u64 pa;
		Attrs attrs;
		MapMode mode;
		Result<Step> visit(PageTable &pt, Op &op, Ctx &c) { return pt.visit_map(op, c, pa, attrs, mode); }
		void post(PageTable &, Op &, Ctx &) {}
	} v{pa, attrs, mode};
	return run(ia, size, v, done, cache);
}

// ---------------------------------------------------------------------------
// unmap
// ---------------------------------------------------------------------------
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::visit_unmap(Op &op, Ctx &c, bool whole_leaves)
{
	if (!F::valid(c.old))
		return Step::next;
	if (F::table(c.old, c.level) && !c.covered())
		return Step::descend;
	if (!F::table(c.old, c.level) && !c.covered() && !whole_leaves)
		return split_leaf(op, c); // part of a block stays mapped
	// The whole entry goes: exchange captures the final A/D bits (only the
	// hardware writes entries besides us: the lock is exclusive).
	const u64 last = F::load(detail::xchg_raw(c.ptep, F::store(0)));
	ops_.sync_table(c.ptep, sizeof(u64));
	ops_.put_table(c.table);
	note_flush(op, c.ia, c.size, F::leaf(last, c.level) ? int(c.level) : -1);
	if (F::table(last, c.level)) {
		void *child = ops_.to_virt(F::oa(last, c.level));
		if (op.sink)
			report_subtree(op, child, c.level - 1, c.ia);
		free_subtree(op, child, c.level - 1);
	} else {
		count_leaves(c.level, -s64(F::leaf(last, c.level)));
		if (op.sink)
			report_leaf(op, last, c.ia, c.level);
	}
	return Step::next;
}

template <class F>
void PageTable<F>::report_leaf(Op &op, u64 e, u64 ia, unsigned level)
{
	op.sink->removed(ia, F::size_of(level), F::oa(e, level), F::attrs(e), F::young(e), F::dirty(e));
}

// Reports the leaves of a subtree unlinked a moment ago. Until the
// operation's invalidation a TLB may still translate through them, so
// each leaf is taken with an exchange too: what the hardware set before
// is in the report, and it can set nothing more in a cleared entry. The
// tables stay as they are otherwise (free_table() frees them whole).
template <class F>
void PageTable<F>::report_subtree(Op &op, void *table, unsigned level, u64 base)
{
	auto *t = static_cast<u64 *>(table);
	const u64 n = u64(1) << F::bits_at(level);
	const u64 size = F::size_of(level);
	for (u64 i = 0; i < n; i++) {
		u64 e = F::load(detail::load_raw(&t[i]));
		if (F::table(e, level)) {
			report_subtree(op, ops_.to_virt(F::oa(e, level)), level - 1, base + i * size);
			continue;
		}
		if (!F::leaf(e, level))
			continue;
		e = F::load(detail::xchg_raw(&t[i], F::store(0)));
		report_leaf(op, e, base + i * size, level);
	}
}

template <class F>
void PageTable<F>::free_subtree(Op &op, void *table, unsigned level)
{
	// Children are unreachable once their parent entry is cleared; the
	// whole subtree is freed after the operation's invalidation.
	free_table(op, table, level);
}

// After descending: a table left with no valid entries is unlinked.
template <class F>
void PageTable<F>::post_unmap(Op &op, Ctx &c)
{
	c.old = F::load(detail::load_raw(c.ptep));
	if (!F::table(c.old, c.level))
		return;
	void *child = ops_.to_virt(F::oa(c.old, c.level));
	if (ops_.table_refs(child) != 1)
		return;
	detail::store_raw(c.ptep, F::store(0));
	ops_.sync_table(c.ptep, sizeof(u64));
	ops_.put_table(c.table);
	// A walk-cache entry for this table is dropped by an invalidation of
	// any address it translated: one of the leaves this operation removed
	// under it, else (it was empty already) its first page.
	if (!noted(op, c.ia, c.size))
		note_flush(op, c.ia, F::size_of(0));
	free_table(op, child, c.level - 1);
}

template <class F>
Result<void> PageTable<F>::remove(u64 ia, u64 size, LeafSink *sink, TableCache *cache, bool whole_leaves)
{
	KVMMU_TRY_VOID(check_range(ia, size));
	lock_.assert_held_write();
	struct V {
		bool whole;
		Result<Step> visit(PageTable &pt, Op &op, Ctx &c) { return pt.visit_unmap(op, c, whole); }
		void post(PageTable &pt, Op &op, Ctx &c) { pt.post_unmap(op, c); }
	} v{whole_leaves};
	return run(ia, size, v, nullptr, cache, sink);
}

template <class F>
Result<void> PageTable<F>::unmap(u64 ia, u64 size, LeafSink *sink, TableCache *cache)
{
	return remove(ia, size, sink, cache, false);
}

template <class F>
Result<void> PageTable<F>::zap(u64 ia, u64 size, LeafSink *sink)
{
	return remove(ia, size, sink, nullptr, true); // never splits: no table memory
}

// ---------------------------------------------------------------------------
// write-protect (dirty logging)
// ---------------------------------------------------------------------------
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::visit_wrprotect(Op &op, Ctx &c)
{
	if (F::table(c.old, c.level))
		return Step::descend;
	if (!F::leaf(c.old, c.level))
		return Step::next;
	u64 e = F::wrprotect(c.old);
	if (e == c.old)
		return Step::next;
	// A block partly in the range is protected whole: a write fault
	// restores what was not meant to be protected.
	const u64 was = c.old; // what the compare-and-exchange replaces
	if (!publish(c, e))
		return Step::retry;
	note_flush(op, c.ia, c.size, int(c.level));
	// Its dirty state, hardware's included, as it was when write access
	// ended (a block protected whole is reported whole).
	if (op.sink && F::dirty(was))
		report_leaf(op, was, c.ia, c.level);
	return Step::next;
}

template <class F>
Result<void> PageTable<F>::wrprotect(u64 ia, u64 size, LeafSink *dirty)
{
	KVMMU_TRY_VOID(check_range(ia, size));
	lock_.assert_held_write();
	struct V {
		Result<Step> visit(PageTable &pt, Op &op, Ctx &c) { return pt.visit_wrprotect(op, c); }
		void post(PageTable &, Op &, Ctx &) {}
	} v;
	return run(ia, size, v, nullptr, nullptr, dirty);
}

// ---------------------------------------------------------------------------
// test and clear young
// ---------------------------------------------------------------------------
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::visit_age(Op &op, Ctx &c, bool &young)
{
	(void)op;
	if (F::table(c.old, c.level))
		return Step::descend;
	if (!F::leaf(c.old, c.level) || !F::young(c.old))
		return Step::next;
	if (!publish(c, F::mkold(c.old)))
		return Step::retry;
	young = true;
	return Step::next;
}

template <class F>
Result<bool> PageTable<F>::test_clear_young(u64 ia, u64 size)
{
	KVMMU_TRY_VOID(check_range(ia, size));
	lock_.assert_held();
	struct V {
		bool young = false;
		Result<Step> visit(PageTable &pt, Op &op, Ctx &c) { return pt.visit_age(op, c, young); }
		void post(PageTable &, Op &, Ctx &) {}
	} v;
	// Clearing the accessed flag needs no invalidation: a stale TLB entry
	// only delays the next "young" report (run() has nothing to flush).
	auto r = run(ia, size, v);
	if (!r)
		return r.error();
	return v.young;
}

// ---------------------------------------------------------------------------
// lookup
// ---------------------------------------------------------------------------
template <class F>
Leaf PageTable<F>::get_leaf(u64 ia)
{
	Leaf l;
	if (ia >= kIaLimit)
		return l;
	lock_.assert_held();
	auto *t = static_cast<u64 *>(root_);
	for (unsigned level = kRootLevel;; level--) {
		const unsigned shift = F::shift_of(level);
		u64 idx = (ia >> shift) & ((u64(1) << F::bits_at(level)) - 1);
		u64 e = F::load(detail::load_raw(&t[idx]));
		if (F::table(e, level)) {
			t = static_cast<u64 *>(ops_.to_virt(F::oa(e, level)));
			continue;
		}
		if (F::leaf(e, level)) {
			l.mapped = true;
			l.level = level;
			l.size = u64(1) << shift;
			l.ia = ia & ~(l.size - 1);
			l.oa = F::oa(e, level) + (ia - l.ia);
			l.attrs = F::attrs(e);
			l.young = F::young(e);
			l.dirty = F::dirty(e);
		}
		return l;
	}
}

// ---------------------------------------------------------------------------
// split and collapse
// ---------------------------------------------------------------------------
template <class F>
Result<typename PageTable<F>::Step> PageTable<F>::visit_split(Op &op, Ctx &c, unsigned to_level)
{
	if (c.level <= to_level) {
		op.done = min(c.ia + c.size, c.end);
		return Step::next;
	}
	if (F::table(c.old, c.level))
		return Step::descend;
	if (!F::leaf(c.old, c.level)) {
		op.done = min(c.ia + c.size, c.end);
		return Step::next;
	}
	return split_leaf(op, c);
}

template <class F>
Result<void> PageTable<F>::split(u64 ia, u64 size, unsigned level, u64 *done, TableCache *cache)
{
	if (done)
		*done = 0;
	KVMMU_TRY_VOID(check_range(ia, size));
	if (level >= kRootLevel || !F::leaf_ok(level))
		return Errno::inval;
	lock_.assert_held_write();
	struct V {
		unsigned to;
		Result<Step> visit(PageTable &pt, Op &op, Ctx &c) { return pt.visit_split(op, c, to); }
		void post(PageTable &, Op &, Ctx &) {}
	} v{level};
	return run(ia, size, v, done, cache);
}

template <class F>
Result<void> PageTable<F>::collapse(u64 ia, unsigned level)
{
	if (level == 0 || level > kRootLevel || !F::leaf_ok(level) || ia >= kIaLimit)
		return Errno::inval;
	lock_.assert_held_write();
	const u64 size = F::size_of(level);
	ia &= ~(size - 1);

	// Find the entry at `level` covering ia.
	auto *t = static_cast<u64 *>(root_);
	unsigned l = kRootLevel;
	u64 *ptep;
	u64 e;
	for (;;) {
		u64 idx = (ia >> F::shift_of(l)) & ((u64(1) << F::bits_at(l)) - 1);
		ptep = &t[idx];
		e = F::load(detail::load_raw(ptep));
		if (l == level)
			break;
		if (!F::table(e, l))
			return Errno::inval;
		t = static_cast<u64 *>(ops_.to_virt(F::oa(e, l)));
		l--;
	}
	if (!F::table(e, level))
		return Errno::inval;

	// Every child must be a leaf one level down, contiguous, same attributes.
	auto *child = static_cast<u64 *>(ops_.to_virt(F::oa(e, level)));
	const u64 n = u64(1) << F::bits_at(level - 1);
	const u64 csize = F::size_of(level - 1);
	u64 first = F::load(detail::load_raw(&child[0]));
	if (!F::leaf(first, level - 1) || (F::oa(first, level - 1) & (size - 1)))
		return Errno::inval;
	Attrs a = F::attrs(first);
	for (u64 i = 0; i < n; i++) {
		u64 ce = F::load(detail::load_raw(&child[i]));
		if (!F::leaf(ce, level - 1) || F::oa(ce, level - 1) != F::oa(first, level - 1) + i * csize ||
		    F::attrs(ce) != a)
			return Errno::inval;
	}

	Op op(ia, ia + size);
	Ctx c{ia, size, level, ptep, reinterpret_cast<void *>(reinterpret_cast<uintptr_t>(ptep) &
		~(uintptr_t(F::table_bytes(level)) - 1)), e, ia, ia + size};
	// Exclusive: only hardware A/D updates can race; retry on those.
	while (!break_entry(c))
		c.old = F::load(detail::load_raw(ptep));
	// Broken and invalidated: no walk reaches the children any more and no
	// TLB entry translates through them, so their A/D bits are final now
	// (read earlier, a bit set between the read and the break would be
	// lost). Only those can have changed since the check above.
	bool young = false, dirty = false;
	for (u64 i = 0; i < n; i++) {
		u64 ce = F::load(detail::load_raw(&child[i]));
		young |= F::young(ce);
		dirty |= F::dirty(ce);
	}
	u64 block = F::make_leaf(F::oa(first, level - 1), level, a);
	if (!young)
		block = F::mkold(block);
	if (dirty)
		block = F::mkdirty(block);
	make_entry(c, block);
	count_leaves(level, 1); // the children's go when their table is freed
	// The table entry counted once in its parent, as the block does now.
	free_table(op, child, level - 1);
	finish(op);
	return {};
}

} // namespace kvmmu::pgt
