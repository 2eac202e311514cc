// SPDX-License-Identifier: GPL-2.0
#include "memslot.hpp"

namespace kvmmu {

Memslot::Memslot(const MemslotDesc &d)
	: id_(d.id), flags_(d.flags), base_(to_gfn(Gpa(d.gpa))), npages_(d.size >> kPageShift),
	  hva_(d.hva)
{
}

Memslot::~Memslot() { kvmmu_plat_kvfree(dirty_); }

void Memslot::mark_dirty(Gfn g) const
{
	if (!dirty_ || !contains(g))
		return;
	u64 i = g - base_;
	__atomic_fetch_or(&dirty_[i / 64], u64(1) << (i % 64), __ATOMIC_RELAXED);
}

MemslotSet::~MemslotSet()
{
	free_index(index_.load(Order::acquire));
	kvmmu_plat_kvfree(arrays_);
}

// Arrays of up to 32767 entries: kvmalloc, so no high-order allocation is
// needed when memory is fragmented.
static void *slot_array(size_t bytes)
{
	return kvmmu_plat_kvmalloc(bytes, (gfp::kernel | gfp::account).raw());
}

MemslotSet *MemslotSet::alloc(u32 n, u32 nhva, void **spare, u64 *spare_bytes)
{
	MemslotSet *s = make<MemslotSet>(gfp::kernel | gfp::account);
	if (!s)
		return nullptr;
	s->n_ = n;
	s->nhva_ = nhva;
	if (!n && !nhva)
		return s;
	// One allocation for the three arrays, reused: a set of thousands of
	// slots is made for every update, and an allocation of that size (with
	// KASAN, its shadow too) costs more than the copy. The set an update
	// replaces leaves its arrays as the spare for the next one; new ones
	// get a quarter more room, so a run of creates reallocates rarely.
	static_assert(sizeof(Memslot *) == sizeof(u64), "the arrays share one allocation");
	const u64 need = sizeof(u64) * (u64(n) + 2 * u64(nhva));
	if (spare && *spare && *spare_bytes >= need) {
		s->arrays_ = *spare;
		s->arrays_bytes_ = *spare_bytes;
		*spare = nullptr;
		*spare_bytes = 0;
	} else {
		const u64 room = need + need / 4;
		s->arrays_ = slot_array(room);
		s->arrays_bytes_ = room;
	}
	if (!s->arrays_) {
		destroy(s);
		return nullptr;
	}
	auto *a = static_cast<u64 *>(s->arrays_);
	s->by_gfn_ = n ? reinterpret_cast<Memslot **>(a) : nullptr;
	s->by_hva_ = nhva ? reinterpret_cast<Memslot **>(a + n) : nullptr;
	s->hva_max_end_ = nhva ? a + n + nhva : nullptr;
	return s;
}

namespace {
enum : u64 { kEntryEmpty = 0, kEntrySlot = 1, kEntryNode = 2, kEntryRun = 3 };
constexpr u64 kEntryType = 3;
constexpr u32 kNodeEntries = 1u << 9;
} // namespace

const Memslot *MemslotSet::find_in(u32 lo, u32 hi, Gfn g) const
{
	while (lo < hi) { // first slot whose end is above g
		u32 mid = (lo + hi) / 2;
		if (by_gfn_[mid]->end_gfn() <= g)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n_ && by_gfn_[lo]->contains(g) ? by_gfn_[lo] : nullptr;
}

const Memslot *MemslotSet::find_gfn(Gfn g) const
{
	const Index *ix = index_.load(Order::acquire);
	if (!ix)
		return find_in(0, n_, g);
	const u64 gfn = g.raw();
	unsigned level = ix->level;
	const unsigned top = kIndexBits * (level + 1);
	if (top < 64 && (gfn >> top))
		return nullptr;
	const u64 *node = ix->root;
	for (;;) {
		u64 e = node[(gfn >> (kIndexBits * level)) & (kNodeEntries - 1)];
		switch (e & kEntryType) {
		case kEntryEmpty:
			return nullptr;
		case kEntrySlot:
			return by_gfn_[e >> 2];
		case kEntryNode:
			node = reinterpret_cast<const u64 *>(e & ~kEntryType);
			level--;
			break;
		default: // a run of slots: [bits 4..33, bits 34..63)
			return find_in(u32((e >> 4) & 0x3fffffff), u32(e >> 34), g);
		}
	}
}

void MemslotSet::free_index(Index *ix)
{
	if (!ix)
		return;
	for (u32 i = 0; i < ix->nnodes; i++)
		kfree(ix->nodes[i]);
	kvmmu_plat_kvfree(ix->nodes);
	destroy(ix);
}

void MemslotSet::index() const
{
	KVMMU_MIGHT_SLEEP();
	if (index_.load(Order::acquire))
		return;
	Index *ix = make_index();
	Index *none = nullptr;
	if (ix && !index_.compare_exchange(none, ix, Order::acq_rel))
		free_index(ix); // another lookup indexed it meanwhile
}

u64 *MemslotSet::new_node(Index &ix)
{
	if (ix.nnodes == ix.budget)
		return nullptr;
	// kmalloc of a power-of-two size is aligned to it: the low bits of a
	// node's address are free for the entry type.
	auto *n = static_cast<u64 *>(kmalloc(kNodeEntries * sizeof(u64), kNodeEntries * sizeof(u64),
					    gfp::kernel | gfp::account | gfp::zero));
	if (n)
		ix.nodes[ix.nnodes++] = n;
	return n;
}

// The entry at `level` covering [base, base + 512^level) gfns, which slots
// by_gfn_[lo, hi) overlap. Returns ~0 when out of memory.
u64 MemslotSet::index_entry(Index &ix, unsigned level, u64 base, u32 lo, u32 hi) const
{
	const u64 span = u64(1) << (kIndexBits * level);
	if (lo == hi)
		return kEntryEmpty;
	const Memslot *first = by_gfn_[lo];
	if (hi - lo == 1 && first->base_gfn().raw() <= base && first->end_gfn().raw() - base >= span)
		return (u64(lo) << 2) | kEntrySlot;
	if (hi - lo <= kIndexRun || level == 0 || ix.nnodes == ix.budget)
		return (u64(hi) << 34) | (u64(lo) << 4) | kEntryRun;
	u64 *node = new_node(ix);
	if (!node)
		return ix.nnodes == ix.budget ? ((u64(hi) << 34) | (u64(lo) << 4) | kEntryRun) : ~u64(0);
	const u64 child = span >> kIndexBits;
	u32 j = lo;
	for (u32 i = 0; i < kNodeEntries; i++) {
		const u64 eb = base + i * child, ee = eb + child;
		while (j < hi && by_gfn_[j]->end_gfn().raw() <= eb)
			j++;
		u32 k = j;
		while (k < hi && by_gfn_[k]->base_gfn().raw() < ee)
			k++;
		u64 e = index_entry(ix, level - 1, eb, j, k);
		if (e == ~u64(0))
			return e;
		node[i] = e;
	}
	return reinterpret_cast<uintptr_t>(node) | kEntryNode;
}

MemslotSet::Index *MemslotSet::make_index() const
{
	Index *ix = make<Index>(gfp::kernel | gfp::account);
	if (!ix)
		return nullptr;
	// Nodes are made only where more than kIndexRun slots share an entry:
	// about one per 512 slots laid out regularly. The budget bounds odd
	// layouts; past it, entries fall back to searching their run.
	ix->budget = 8 + n_ / 2;
	ix->nodes = static_cast<u64 **>(slot_array(sizeof(u64 *) * ix->budget));
	if (!ix->nodes) {
		free_index(ix);
		return nullptr;
	}
	const u64 max_end = n_ ? by_gfn_[n_ - 1]->end_gfn().raw() : 1;
	unsigned level = 0;
	while (kIndexBits * (level + 1) < 64 && (u64(1) << (kIndexBits * (level + 1))) < max_end)
		level++;
	ix->level = level;
	ix->root = new_node(*ix);
	if (!ix->root) {
		free_index(ix);
		return nullptr;
	}
	const u64 span = u64(1) << (kIndexBits * level);
	u32 j = 0;
	for (u32 i = 0; i < kNodeEntries; i++) {
		const u64 eb = i * span;
		if (kIndexBits * (level + 1) >= 64 && i && eb == 0)
			break; // the top level's entries cover every gfn already
		const u64 ee = eb + span;
		while (j < n_ && by_gfn_[j]->end_gfn().raw() <= eb)
			j++;
		u32 k = j;
		while (k < n_ && (ee < eb || by_gfn_[k]->base_gfn().raw() < ee))
			k++;
		u64 e = index_entry(*ix, level, eb, j, k);
		if (e == ~u64(0)) {
			free_index(ix);
			return nullptr;
		}
		ix->root[i] = e;
	}
	return ix;
}

const Memslot *MemslotSet::find_id(u32 id) const
{
	for (u32 i = 0; i < n_; i++)
		if (by_gfn_[i]->id() == id)
			return by_gfn_[i];
	return nullptr;
}

Memslots::Memslots() { KVMMU_LOCK_INIT(update_lock_); }

Result<void> Memslots::init()
{
	KVMMU_TRY_VOID(KVMMU_SRCU_INIT(srcu_));
	MemslotSet *empty = MemslotSet::alloc(0, 0, nullptr, nullptr);
	if (!empty) {
		srcu_.cleanup();
		return Errno::nomem;
	}
	current_.store(empty, Order::release);
	initialised_ = true;
	return {};
}

Memslots::~Memslots()
{
	if (!initialised_)
		return;
	MemslotSet *s = current_.load();
	for (u32 i = 0; i < s->n_; i++)
		destroy(s->by_gfn_[i]);
	destroy(s);
	for (Memslot **chunk : by_id_)
		kfree(chunk);
	kvmmu_plat_kvfree(spare_);
	srcu_.cleanup();
}

namespace {

bool aligned(u64 v) { return page_aligned(v); }

// Block copies that may be empty (memcpy/memmove of nothing from a null
// array is still undefined).
template <class T> void copy_n(T *dst, const T *src, u32 n)
{
	if (n)
		__builtin_memmove(dst, src, sizeof(T) * n);
}

// First index in a[0, n) whose element is not before x (lower) or is
// after x (upper, !lower).
template <class Less>
u32 bound(Memslot *const *a, u32 n, const Memslot *x, Less less, bool lower)
{
	u32 lo = 0, hi = n;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		if (lower ? less(a[mid], x) : !less(x, a[mid]))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

// dst = src without `skip`, with `add` inserted after the elements not
// after it: two binary searches and block copies (an update of a set of
// thousands of slots is a copy, not a walk over its slots). Returns the
// first index at which dst differs from src.
template <class Less>
u32 copy_sorted(Memslot **dst, Memslot *const *src, u32 n, const Memslot *skip, Memslot *add,
		Less less)
{
	u32 first = n, m = n;
	if (skip) {
		u32 ks = bound(src, n, skip, less, true);
		while (ks < n && src[ks] != skip) // among the equal keys (hva order)
			ks++;
		if (ks < n) {
			copy_n(dst, src, ks);
			copy_n(dst + ks, src + ks + 1, n - ks - 1);
			first = ks;
			m = n - 1;
		}
	}
	if (m == n)
		copy_n(dst, src, n);
	if (add) {
		u32 ka = bound(dst, m, add, less, false);
		copy_n(dst + ka + 1, dst + ka, m - ka);
		dst[ka] = add;
		first = min(first, ka);
	}
	return first;
}

} // namespace

Result<void> Memslots::update(const MemslotDesc &d, MemslotListener *listener)
{
	if (d.flags & ~kMemFlagsValid || d.id >= kMaxMemslots)
		return Errno::inval;
	if (!aligned(d.gpa) || !aligned(d.size) || !aligned(d.hva))
		return Errno::inval;
	if (d.gpa + d.size < d.gpa || d.hva + d.size < d.hva || (d.size >> kPageShift) > kMaxSlotPages)
		return Errno::inval;
	// Guest frame numbers must not run past what a Gfn counts.
	if (((d.gpa + d.size) >> kPageShift) < (d.gpa >> kPageShift))
		return Errno::inval;
	if (d.size && !kvmmu_plat_user_range_ok(d.hva, d.size))
		return Errno::inval;
	// Invalidations come with untagged addresses: a tagged hva (arm64 TBI)
	// would never match them.
	if (kvmmu_plat_untagged_addr(d.hva) != d.hva)
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();

	MutexGuard g(update_lock_);
	MemslotSet *old = current_.load(Order::acquire);
	const Memslot *prev = by_id_[d.id / kIdChunk] ? id_entry(d.id) : nullptr;
	Memslot *created = nullptr;

	if (!d.size) {
		if (!prev)
			return Errno::inval; // deleting what does not exist
	} else if (prev) {
		// An existing slot keeps its host range, size and read-only-ness:
		// only a move (new gpa) or a dirty-logging change is allowed.
		if (d.hva != prev->hva().raw() || (d.size >> kPageShift) != prev->npages() ||
		    ((d.flags ^ prev->flags()) & kMemReadonly))
			return Errno::inval;
		if (d.gpa == to_gpa(prev->base_gfn()).raw() && d.flags == prev->flags())
			return {}; // nothing changes
	}
	if (d.size) {
		Gfn base = to_gfn(Gpa(d.gpa));
		Gfn end = base + (d.size >> kPageShift);
		// The slots overlapping [base, end): from the first that ends
		// above base, while they start below end (disjoint, sorted).
		u32 lo = 0, hi = old->n_;
		while (lo < hi) {
			u32 mid = (lo + hi) / 2;
			if (old->by_gfn_[mid]->end_gfn() <= base)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (u32 i = lo; i < old->n_ && old->by_gfn_[i]->base_gfn() < end; i++)
			if (old->by_gfn_[i] != prev)
				return Errno::exist;
		if (!by_id_[d.id / kIdChunk]) {
			by_id_[d.id / kIdChunk] = static_cast<Memslot **>(
				kmalloc(sizeof(Memslot *) * kIdChunk, alignof(Memslot *),
					gfp::kernel | gfp::account | gfp::zero));
			if (!by_id_[d.id / kIdChunk])
				return Errno::nomem;
		}
		created = make<Memslot>(gfp::kernel | gfp::account, d);
		if (!created)
			return Errno::nomem;
		if (d.flags & kMemLogDirtyPages) {
			// Up to 256 MiB for the largest slot: kvmalloc.
			created->dirty_ = static_cast<u64 *>(kvmmu_plat_kvmalloc(created->dirty_bitmap_bytes(),
				(gfp::kernel | gfp::account | gfp::zero).raw()));
			if (!created->dirty_) {
				destroy(created);
				return Errno::nomem;
			}
		}
	}

	// A slot that goes away or moves is first hidden from faults while
	// invalidations still find it by host address (KVM's "invalid" slot):
	// after readers of the old set are gone, its mappings are dropped, and
	// no invalidation of its host range can miss them meanwhile. Both new
	// sets are built before either is published, so nothing can fail half
	// way.
	const bool retire = prev && (!d.size || d.gpa != to_gpa(prev->base_gfn()).raw());
	MemslotSet *mid = nullptr;
	if (retire) {
		mid = make_set(old, prev, nullptr, true);
		if (!mid) {
			destroy(created);
			return Errno::nomem;
		}
		mid->generation_ = old->generation_ + 1;
	}
	MemslotSet *next = make_set(old, prev, created, false);
	if (!next) {
		destroy(mid);
		destroy(created);
		return Errno::nomem;
	}
	next->generation_ = old->generation_ + (retire ? 2 : 1);

	if (retire) {
		current_.store(mid, Order::release);
		srcu_.synchronize(); // no fault uses `prev` any more
		if (listener)
			listener->retiring(prev);
	}
	current_.store(next, Order::release);
	id_entry(d.id) = created;
	srcu_.synchronize(); // no reader sees `old` (or `mid`) any more
	// Bits the old slot's log took until now go to its successor.
	if (prev && created && prev->dirty_ && created->dirty_) {
		for (u64 w = 0; w < prev->dirty_bitmap_bytes() / 8; w++)
			if (prev->dirty_[w])
				__atomic_fetch_or(&created->dirty_[w], prev->dirty_[w], __ATOMIC_RELAXED);
	}
	if (listener)
		listener->committed(prev, created);
	destroy(const_cast<Memslot *>(prev));
	retire_set(mid);
	retire_set(old);
	return {};
}

// Frees a set no reader uses any more, keeping the larger of its arrays
// and the spare as the spare.
void Memslots::retire_set(MemslotSet *s)
{
	if (!s)
		return;
	if (s->arrays_ && s->arrays_bytes_ > spare_bytes_) {
		kvmmu_plat_kvfree(spare_);
		spare_ = s->arrays_;
		spare_bytes_ = s->arrays_bytes_;
		s->arrays_ = nullptr;
	}
	destroy(s);
}

// A new set: `old` without `skip`, with `add`; `keep_hva` keeps `skip` in
// the by-host-address order (only).
MemslotSet *Memslots::make_set(const MemslotSet *old, const Memslot *skip, Memslot *add, bool keep_hva)
{
	const u32 n = old->n_ - (skip ? 1 : 0) + (add ? 1 : 0);
	const u32 nhva = old->nhva_ - (skip && !keep_hva ? 1 : 0) + (add ? 1 : 0);
	MemslotSet *next = MemslotSet::alloc(n, nhva, &spare_, &spare_bytes_);
	if (!next)
		return nullptr;
	copy_sorted(next->by_gfn_, old->by_gfn_, old->n_, skip, add,
		    [](const Memslot *x, const Memslot *y) { return x->base_gfn() < y->base_gfn(); });
	const u32 same = copy_sorted(next->by_hva_, old->by_hva_, old->nhva_, keep_hva ? nullptr : skip, add,
				     [](const Memslot *x, const Memslot *y) { return x->hva() < y->hva(); });
	// The running maximum is the old one up to the first change.
	copy_n(next->hva_max_end_, old->hva_max_end_, min(same, nhva));
	u64 m = same ? next->hva_max_end_[same - 1] : 0;
	for (u32 i = same; i < nhva; i++) {
		m = max(m, next->by_hva_[i]->hva_end().raw());
		next->hva_max_end_[i] = m;
	}
	// Small sets are indexed now; large ones by their first fault.
	if (n <= MemslotSet::kEagerIndex) {
		MemslotSet::Index *ix = next->make_index();
		if (!ix) {
			destroy(next);
			return nullptr;
		}
		next->index_.store(ix, Order::release);
	}
	return next;
}

} // namespace kvmmu
