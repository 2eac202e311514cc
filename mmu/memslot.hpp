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
	void mark_dirty(Gfn g) const;
	u64 *dirty_bitmap() const { return dirty_; }
	u64 dirty_bitmap_bytes() const { return ((npages_ + 63) / 64) * 8; }
	// Word `i` of the dirty bitmap, cleared atomically (a concurrent
	// mark_dirty() lands in this word or the next read of it).
	u64 take_dirty_word(u64 i) const { return __atomic_exchange_n(&dirty_[i], 0, __ATOMIC_ACQ_REL); }
	void restore_dirty_word(u64 i, u64 bits) const { __atomic_fetch_or(&dirty_[i], bits, __ATOMIC_RELAXED); }

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

	// O(1) in the number of slots once the set is indexed (a radix index
	// over gfns, below), O(log n) before. Never allocates: any context.
	const Memslot *find_gfn(Gfn g) const;
	// Builds the index if the set has none yet. Sets of up to kEagerIndex
	// slots are indexed when made; larger ones by the first lookup that
	// may sleep (a fault), so that a VMM creating thousands of slots in a
	// row does not pay an O(n) index per slot. Process context.
	void index() const;
	const Memslot *find_id(u32 id) const;
	// Calls fn(slot) for every slot whose gfn range overlaps [start, end).
	template <class Fn> void for_each_gfn_overlap(Gfn start, Gfn end, Fn &&fn) const;
	// Calls fn(slot) for every slot whose host range overlaps [start, end).
	template <class Fn> void for_each_hva_overlap(Hva start, Hva end, Fn &&fn) const;

private:
	friend class Memslots;
	template <class T, class... Args> friend T *kvmmu::make(Gfp, Args &&...);
	template <class T> friend void kvmmu::destroy(T *);
	MemslotSet() = default;
	~MemslotSet();
	// `spare`/`spare_bytes` (optional): arrays to reuse if large enough.
	static MemslotSet *alloc(u32 n, u32 nhva, void **spare, u64 *spare_bytes);
	struct Index;
	// The gfn index over by_gfn_; nullptr: out of memory.
	Index *make_index() const;
	u64 index_entry(Index &ix, unsigned level, u64 base, u32 lo, u32 hi) const;
	static u64 *new_node(Index &ix);
	static void free_index(Index *ix);
	const Memslot *find_in(u32 lo, u32 hi, Gfn g) const;

	// The gfn index: a radix tree with 512 entries a node, like a page
	// table over guest frames. An entry at level L covers 512^L gfns and is
	// empty, one slot covering all of it, a short run of by_gfn_ to search
	// (at most kIndexRun slots, or more once the node budget is spent), or
	// the next-level node. Lookups cost the tree's depth, which the
	// highest gfn in use sets, whatever the number of slots.
	static constexpr unsigned kIndexBits = 9;
	static constexpr u32 kIndexRun = 2;
	static constexpr u32 kEagerIndex = 512;
	struct Index {
		u64 *root = nullptr;
		unsigned level = 0;	// level of the root node's entries
		u64 **nodes = nullptr;	// every node, root first, for freeing
		u32 nnodes = 0, budget = 0;
	};
	// Published once, by the updater or a reader (compare-and-exchange).
	mutable Atomic<Index *> index_;

	u64 generation_ = 0;
	u32 n_ = 0;			// slots faults see (by_gfn_)
	u32 nhva_ = 0;			// slots invalidations see (by_hva_): one more while one retires
	Memslot **by_gfn_ = nullptr;	// sorted by base gfn (ranges disjoint)
	Memslot **by_hva_ = nullptr;	// sorted by host start
	u64 *hva_max_end_ = nullptr;	// max host end of by_hva_[0..i]
	void *arrays_ = nullptr;	// the allocation the three arrays share
	u64 arrays_bytes_ = 0;
};

// Told of every committed update, once the new set is visible and no reader
// of the old one remains, before the replaced slot is freed: the place to
// drop mappings made through the old slot. Process context, update lock held.
class MemslotListener {
public:
	// `old_slot`: the slot replaced or deleted (nullptr on create);
	// `new_slot`: the slot created or replacing it (nullptr on delete).
	virtual void committed(const Memslot *old_slot, const Memslot *new_slot) = 0;
	// A slot being deleted or moved: faults no longer find it (and none
	// still uses it), invalidations still do. Drop what it mapped.
	virtual void retiring(const Memslot *old_slot) = 0;

protected:
	~MemslotListener() = default;
};

class Memslots : Pinned {
public:
	Memslots();
	~Memslots();
	Result<void> init();

	// Process context, may sleep. Applies KVM's rules; a failing update
	// changes nothing. Returns 0 for an update that changes nothing.
	Result<void> update(const MemslotDesc &d, MemslotListener *listener = nullptr);

	// Readers: hold a ReadSection while using the set or its slots.
	class ReadSection : Pinned {
	public:
		[[nodiscard]] explicit ReadSection(const Memslots &m)
			: m_(m), idx_(m.srcu_.read_lock()), set_(m.current_.load(Order::acquire)) {}
		~ReadSection() { m_.srcu_.read_unlock(idx_); }
		// One set for the whole section, however often it is asked for.
		const MemslotSet &set() const { return *set_; }

	private:
		const Memslots &m_;
		int idx_;
		const MemslotSet *set_;
	};

	// The generation of the set in use now. Any context: the set is read
	// inside a read section (a bare load could find it freed).
	u64 generation() const
	{
		ReadSection rs(*this);
		return rs.set().generation();
	}

private:
	MemslotSet *make_set(const MemslotSet *old, const Memslot *skip, Memslot *add, bool keep_hva);
	void retire_set(MemslotSet *s);

	Mutex update_lock_;
	mutable Srcu srcu_;
	Atomic<MemslotSet *> current_;
	bool initialised_ = false;
	// The current set's slots by id, for updates only (update_lock_):
	// chunks of kIdChunk, made when an id in them is first used.
	static constexpr u32 kIdChunk = 256;
	Memslot **by_id_[(kMaxMemslots + kIdChunk - 1) / kIdChunk] = {};
	Memslot *&id_entry(u32 id) { return by_id_[id / kIdChunk][id % kIdChunk]; }
	// Arrays of a retired set, for the next update (update_lock_).
	void *spare_ = nullptr;
	u64 spare_bytes_ = 0;
};

template <class Fn>
void MemslotSet::for_each_gfn_overlap(Gfn start, Gfn end, Fn &&fn) const
{
	u32 lo = 0, hi = n_;
	while (lo < hi) { // first slot ending after start
		u32 mid = (lo + hi) / 2;
		if (by_gfn_[mid]->end_gfn() <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (u32 i = lo; i < n_ && by_gfn_[i]->base_gfn() < end; i++)
		fn(*by_gfn_[i]);
}

template <class Fn>
void MemslotSet::for_each_hva_overlap(Hva start, Hva end, Fn &&fn) const
{
	// Slots are sorted by start; scan back from the last one starting
	// before `end` while some earlier slot could still reach `start`.
	u32 lo = 0, hi = nhva_;
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
