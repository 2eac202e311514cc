// SPDX-License-Identifier: GPL-2.0
// Memslots: guest physical memory backed by ranges of the VMM's address
// space, with KVM's update semantics.
//
// Readers look slots up without locks (inside an SRCU read section) and see
// either the old or the new set, never a mix; updates are serialised by a
// mutex, publish a new immutable set and wait for readers of the old one
// before freeing what it alone referenced.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/srcu.hpp>
#include <kvmmu/types.hpp>

namespace kvmmu {

constexpr u32 kMemLogDirtyPages = 1u << 0;
constexpr u32 kMemReadonly = 1u << 1;
constexpr u32 kMemFlagsValid = kMemLogDirtyPages | kMemReadonly;
constexpr u32 kMaxMemslots = 32767;
// Largest slot: 2^31 pages keeps dirty-bitmap indices and sizes in range.
constexpr u64 kMaxSlotPages = u64(1) << 31;

// What a VMM or KVM core asks for (KVM_SET_USER_MEMORY_REGION's fields).
struct MemslotDesc {
	u32 id = 0;
	u32 flags = 0;
	u64 gpa = 0;
	u64 size = 0;	// 0 deletes the slot
	u64 hva = 0;
};

class Memslot : Pinned {
public:
	u32 id() const { return id_; }
	u32 flags() const { return flags_; }
	Gfn base_gfn() const { return base_; }
	u64 npages() const { return npages_; }
	Gfn end_gfn() const { return base_ + npages_; }
	Hva hva() const { return hva_; }
	Hva hva_end() const { return hva_ + (npages_ << kPageShift); }
	bool readonly() const { return flags_ & kMemReadonly; }
	bool logging_dirty() const { return dirty_ != nullptr; }
	bool contains(Gfn g) const { return base_ <= g && g < end_gfn(); }
	Hva gfn_to_hva(Gfn g) const { return hva_ + ((g - base_) << kPageShift); }

	// Dirty log (LOG_DIRTY_PAGES): one bit per page.
	void mark_dirty(Gfn g);
	u64 *dirty_bitmap() const { return dirty_; }
	u64 dirty_bitmap_bytes() const { return ((npages_ + 63) / 64) * 8; }

private:
	friend class Memslots;
	template <class T, class... Args> friend T *kvmmu::make(Gfp, Args &&...);
	Memslot(const MemslotDesc &d);
	~Memslot();
	template <class T> friend void kvmmu::destroy(T *);

	u32 id_;
	u32 flags_;
	Gfn base_;
	u64 npages_;
	Hva hva_;
	u64 *dirty_ = nullptr;
};

// An immutable set of slots, sorted for O(log n) lookups.
class MemslotSet : Pinned {
public:
	u64 generation() const { return generation_; }
	u32 count() const { return n_; }
	const Memslot *at(u32 i) const { return by_gfn_[i]; }

	const Memslot *find_gfn(Gfn g) const;
	const Memslot *find_id(u32 id) const;
	// Calls fn(slot) for every slot whose host range overlaps [start, end).
	template <class Fn> void for_each_hva_overlap(Hva start, Hva end, Fn &&fn) const;

private:
	friend class Memslots;
	template <class T, class... Args> friend T *kvmmu::make(Gfp, Args &&...);
	template <class T> friend void kvmmu::destroy(T *);
	MemslotSet() = default;
	~MemslotSet();
	static MemslotSet *alloc(u32 n);

	u64 generation_ = 0;
	u32 n_ = 0;
	Memslot **by_gfn_ = nullptr;	// sorted by base gfn (ranges disjoint)
	Memslot **by_hva_ = nullptr;	// sorted by host start
	u64 *hva_max_end_ = nullptr;	// max host end of by_hva_[0..i]
};

class Memslots : Pinned {
public:
	Memslots();
	~Memslots();
	Result<void> init();

	// Process context, may sleep. Applies KVM's rules; a failing update
	// changes nothing. Returns 0 for an update that changes nothing.
	Result<void> update(const MemslotDesc &d);

	// Readers: hold a ReadSection while using the set or its slots.
	class ReadSection : Pinned {
	public:
		[[nodiscard]] explicit ReadSection(const Memslots &m)
			: m_(m), idx_(m.srcu_.read_lock()) {}
		~ReadSection() { m_.srcu_.read_unlock(idx_); }
		const MemslotSet &set() const { return *m_.current_.load(Order::acquire); }

	private:
		const Memslots &m_;
		int idx_;
	};

	u64 generation() const { return current_.load(Order::acquire)->generation(); }

private:
	Mutex update_lock_;
	mutable Srcu srcu_;
	Atomic<MemslotSet *> current_;
	bool initialised_ = false;
};

template <class Fn>
void MemslotSet::for_each_hva_overlap(Hva start, Hva end, Fn &&fn) const
{
	// Slots are sorted by start; scan back from the last one starting
	// before `end` while some earlier slot could still reach `start`.
	u32 lo = 0, hi = n_;
	while (lo < hi) {
		u32 mid = (lo + hi) / 2;
		if (by_hva_[mid]->hva() < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (u32 i = lo; i-- > 0;) {
		if (hva_max_end_[i] <= start.raw())
			break;
		const Memslot *s = by_hva_[i];
		if (s->hva_end() > start)
			fn(*s);
	}
}

} // namespace kvmmu
