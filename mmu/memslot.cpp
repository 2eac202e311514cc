// SPDX-License-Identifier: GPL-2.0
#include "memslot.hpp"

namespace kvmmu {

Memslot::Memslot(const MemslotDesc &d)
	: id_(d.id), flags_(d.flags), base_(to_gfn(Gpa(d.gpa))), npages_(d.size >> kPageShift),
	  hva_(d.hva)
{
}

Memslot::~Memslot() { kfree(dirty_); }

void Memslot::mark_dirty(Gfn g)
{
	if (!dirty_ || !contains(g))
		return;
	u64 i = g - base_;
	__atomic_fetch_or(&dirty_[i / 64], u64(1) << (i % 64), __ATOMIC_RELAXED);
}

MemslotSet::~MemslotSet()
{
	kfree(by_gfn_);
	kfree(by_hva_);
	kfree(hva_max_end_);
}

MemslotSet *MemslotSet::alloc(u32 n)
{
	MemslotSet *s = make<MemslotSet>(gfp::kernel | gfp::account);
	if (!s)
		return nullptr;
	s->n_ = n;
	if (n) {
		size_t ptrs = sizeof(Memslot *) * n;
		s->by_gfn_ = static_cast<Memslot **>(kmalloc(ptrs, alignof(Memslot *), gfp::kernel | gfp::account));
		s->by_hva_ = static_cast<Memslot **>(kmalloc(ptrs, alignof(Memslot *), gfp::kernel | gfp::account));
		s->hva_max_end_ = static_cast<u64 *>(kmalloc(sizeof(u64) * n, alignof(u64), gfp::kernel | gfp::account));
		if (!s->by_gfn_ || !s->by_hva_ || !s->hva_max_end_) {
			destroy(s);
			return nullptr;
		}
	}
	return s;
}

const Memslot *MemslotSet::find_gfn(Gfn g) const
{
	u32 lo = 0, hi = n_;
	while (lo < hi) { // first slot whose end is above g
		u32 mid = (lo + hi) / 2;
		if (by_gfn_[mid]->end_gfn() <= g)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n_ && by_gfn_[lo]->contains(g) ? by_gfn_[lo] : nullptr;
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
	MemslotSet *empty = MemslotSet::alloc(0);
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
	srcu_.cleanup();
}

namespace {

bool aligned(u64 v) { return page_aligned(v); }

// dst = src without `skip`, with `add` inserted in order: O(n), so that an
// update costs a copy of the set and no sort.
template <class Less>
void copy_sorted(Memslot **dst, Memslot *const *src, u32 n, const Memslot *skip, Memslot *add,
		 Less less)
{
	u32 j = 0;
	bool placed = !add;
	for (u32 i = 0; i < n; i++) {
		if (src[i] == skip)
			continue;
		if (!placed && less(add, src[i])) {
			dst[j++] = add;
			placed = true;
		}
		dst[j++] = src[i];
	}
	if (!placed)
		dst[j] = add;
}

} // namespace

Result<void> Memslots::update(const MemslotDesc &d)
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
	KVMMU_MIGHT_SLEEP();

	MutexGuard g(update_lock_);
	MemslotSet *old = current_.load(Order::acquire);
	const Memslot *prev = old->find_id(d.id);
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
		for (u32 i = 0; i < old->n_; i++) {
			const Memslot *s = old->by_gfn_[i];
			if (s != prev && s->base_gfn() < end && base < s->end_gfn())
				return Errno::exist;
		}
		created = make<Memslot>(gfp::kernel | gfp::account, d);
		if (!created)
			return Errno::nomem;
		if (d.flags & kMemLogDirtyPages) {
			created->dirty_ = static_cast<u64 *>(kmalloc(created->dirty_bitmap_bytes(), 8,
				gfp::kernel | gfp::account | gfp::zero));
			if (!created->dirty_) {
				destroy(created);
				return Errno::nomem;
			}
		}
	}

	u32 n = old->n_ - (prev ? 1 : 0) + (created ? 1 : 0);
	MemslotSet *next = MemslotSet::alloc(n);
	if (!next) {
		destroy(created);
		return Errno::nomem;
	}
	copy_sorted(next->by_gfn_, old->by_gfn_, old->n_, prev, created,
		    [](const Memslot *x, const Memslot *y) { return x->base_gfn() < y->base_gfn(); });
	copy_sorted(next->by_hva_, old->by_hva_, old->n_, prev, created,
		    [](const Memslot *x, const Memslot *y) { return x->hva() < y->hva(); });
	u64 m = 0;
	for (u32 i = 0; i < n; i++) {
		m = max(m, next->by_hva_[i]->hva_end().raw());
		next->hva_max_end_[i] = m;
	}
	next->generation_ = old->generation_ + 1;

	current_.store(next, Order::release);
	srcu_.synchronize(); // no reader sees `old` any more
	destroy(const_cast<Memslot *>(prev));
	destroy(old);
	return {};
}

} // namespace kvmmu
