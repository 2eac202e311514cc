// SPDX-License-Identifier: GPL-2.0
// The pfn cache (gfn_to_pfn_cache): a long-lived kernel mapping of one
// guest page, for kernel code that reads and writes guest memory outside
// the stage-2 table (Xen shared info, steal time, ...), kept coherent with
// the host's page tables through the mmu notifier. Seed 001.
//
// Readers:  read_lock(); if check(len) == 1, use khva() for len bytes;
//           read_unlock(). Otherwise unlock, refresh(), try again.
// Refresh:  may sleep; never retries because of invalidations that do not
//           overlap the cache's page, and never spins on one that does: it
//           sleeps until the overlapping ones end (docs/pfncache.md has the
//           protocol and the argument that it terminates; the model in
//           pfncache/model checks it).
//
// Locking (docs/locking.md): refresh_lock_ (mutex) > VM MMU lock >
// PfnCacheHub::index_lock_ > lock_ (rwlock). Readers take lock_ shared and
// never sleep while holding it.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/types.hpp>
#include <kvmmu/wait.hpp>

#include "../mmu/listener.hpp"
#include "../mmu/vm.hpp"

namespace kvmmu {

class PfnCacheHub;

struct PfnCacheStats {
	u64 refreshes;	   // refreshes that published a mapping
	u64 retries;	   // lookups thrown away (an overlapping invalidation or slot change)
	u64 waits;	   // sleeps until overlapping invalidations ended
	u64 invalidations; // invalidate_range_start calls that overlapped the cache
};

class PfnCache : Pinned {
public:
	// How refresh() decides that its lookup may be stale. `exact` is
	// kvmmu's rule; `baseline` is upstream KVM's (retry, at once, while any
	// invalidation is in flight anywhere in the VM or any ended since the
	// lookup began), kept only as the comparison of benchmarks.
	enum class Rule : u8 { exact, baseline };

	// Scripted interleavings for tests: the hook runs at these points of
	// refresh(), with no lock held.
	enum class Point : u8 {
		before_lookup,	// the cache is indexed and (exact) needs_inval cleared
		after_lookup,	// the pfn is looked up and mapped, not yet published
		after_publish,	// valid and published
		retrying,	// the lookup was thrown away
	};
	using TestHook = void (*)(PfnCache &c, Point p, void *arg);

	// init: an inactive cache of `vm`. Process context.
	static Result<PfnCache *> create(Vm &vm, Rule rule = Rule::exact);
	// destroy: deactivates, then frees. No reader may hold the cache.
	~PfnCache();

	// Point the cache at [gpa, gpa + len) (resolved through the memslots
	// at each refresh; a memslot change makes check() fail until the next
	// refresh) or at [hva, hva + len) of the VM's address space. The range
	// must be non-empty and inside one page: -EINVAL otherwise (and, for a
	// gpa, beyond the VM's guest address limit), nothing changed. An
	// active cache moves to the new address. Does not map: check() fails
	// until refresh().
	Result<void> activate_gpa(Gpa gpa, u64 len);
	Result<void> activate_hva(Hva hva, u64 len);
	// Maps the page. 0 with the cache valid (check() then passes until an
	// invalidation or slot change); or -EINVAL (inactive), -ENOENT (no
	// slot), -EPERM (read-only slot or host memory), -EFAULT, -EHWPOISON,
	// -EOPNOTSUPP (device memory: no kernel mapping of MMIO), -EIO (the
	// address space is gone), -EINTR (a signal), -ENOMEM; the cache stays
	// invalid then. `force`: drop a valid mapping and look up again.
	// Process context; sleeps.
	Result<void> refresh(bool force = false);
	// Unmaps and forgets the address; idempotent.
	void deactivate();

	// Reader side, under read_lock(): 1 if the mapping is valid for len
	// bytes from the cache's address, 0 if it must be refreshed, -EINVAL
	// for an inactive cache or a len of 0 or past the cache's length.
	void read_lock() { lock_.read_lock(); }
	void read_unlock() { lock_.read_unlock(); }
	Result<bool> check(u64 len) const;
	// The kernel address of the cache's first byte; only after check()
	// passed, under the same read_lock().
	void *khva() const { return static_cast<u8 *>(map_) + off_; }
	// A KVM core wrote through the cache: log the page dirty if its slot
	// logs dirty pages (a cache by gpa only).
	void mark_dirty();

	PfnCacheStats stats() const;
	u64 length() const { return len_; }
	void set_test_hook(TestHook h, void *arg)
	{
		hook_ = h;
		hook_arg_ = arg;
	}

private:
	template <class T, class... Args> friend T *make(Gfp, Args &&...);
	friend class PfnCacheHub;
	PfnCache(Vm &vm, PfnCacheHub &hub, Rule rule);

	struct Mapping {
		void *va = nullptr;
		Pfn pfn;
		bool remapped = false; // memremap, else kmap
	};
	Result<Mapping> map(const PfnInfo &p);
	static void unmap(const Mapping &m);
	Mapping take_locked();
	void invalidate_locked();
	template <class Set> void reset(Set &&set);
	Result<void> activate(bool by_gpa, u64 addr, u64 len);
	Result<void> refresh_once(bool &again);
	void point(Point p)
	{
		if (hook_)
			hook_(*this, p, hook_arg_);
	}

	Vm &vm_;
	PfnCacheHub &hub_;
	const Rule rule_;
	Mutex refresh_lock_;	// serialises activate/refresh/deactivate
	RwLock lock_;		// readers shared; publish and invalidation exclusive

	// Written under refresh_lock_ and lock_ exclusive; read under either.
	bool active_ = false;
	bool by_gpa_ = false;
	u64 addr_ = 0;		// the gpa or hva activated
	u64 off_ = 0;		// its offset in the page
	u64 len_ = 0;
	// Under lock_ (written exclusive).
	bool valid_ = false;
	bool needs_inval_ = false; // an overlapping invalidation started
	u64 gen_ = 0;		// memslot generation the mapping was resolved in
	Mapping cur_;
	void *map_ = nullptr;	// cur_.va, what khva() offsets
	// Under PfnCacheHub::index_lock_.
	bool indexed_ = false;
	Hva page_;		// the host page the cache is indexed under

	TestHook hook_ = nullptr;
	void *hook_arg_ = nullptr;
	Atomic<u64> refreshes_, retries_, waits_, invalidations_;
	Atomic<u32> id_refs_;	// a cache of the id table: the table's + get()'s
	u64 serial_ = 0;	// which add_id() made it one (never reused)
};

// A VM's pfn caches, as the VM's listener (one per VM): the index that
// finds the caches an invalidation overlaps, the wait queue refreshes
// sleep on, and the caches created through /dev/kvmmu (by id).
//
// The index is an array of (host page, cache) sorted by page: an
// invalidation finds its first cache by binary search and visits only the
// caches inside its range, O(log n + hits) whatever the number of caches.
// Each cache reserves its entry when it is created, so indexing one (under
// the spinlock, at refresh) never allocates.
class PfnCacheHub final : public VmListener {
public:
	static Result<PfnCacheHub *> of(Vm &vm);
	static PfnCacheHub *find(Vm &vm);

	void invalidate_start(Hva start, Hva end) override;
	void invalidate_end(Hva start, Hva end) override;
	void released() override;
	void detach() override;

	// Caches created through the ioctls, by id (they go with the VM).
	static constexpr unsigned kMaxIds = 1024;
	Result<u32> add_id(PfnCache *c);
	// The serial add_id() gave c: names this cache, not its reusable id.
	u64 serial(const PfnCache &c) const { return c.serial_; }
	// The cache with `id`, held until put(); -ENOENT.
	Result<PfnCache *> get(u32 id);
	void put(PfnCache *c);
	// -ENOENT if `id` holds no cache (or, with a `serial`, another one
	// than the one add_id() gave that serial).
	Result<void> remove_id(u32 id, u64 serial = 0);

	// For tests: caches indexed now.
	unsigned indexed() const { return n_; }

private:
	template <class T, class... Args> friend T *make(Gfp, Args &&...);
	template <class T> friend void destroy(T *);
	friend class PfnCache;
	explicit PfnCacheHub(Vm &vm);
	~PfnCacheHub();

	struct Entry {
		u64 page;
		PfnCache *c;
	};
	Result<void> reserve();
	void unreserve();
	void index(PfnCache &c, Hva page);
	void unindex(PfnCache &c);
	void unindex_locked(PfnCache &c);
	unsigned lower_bound(u64 page) const;
	Result<void> wait_none_in_flight(Hva page);

	Vm &vm_;
	Mutex grow_lock_;	// reserve/unreserve
	unsigned reserved_ = 0;	// entries promised to live caches; grow_lock_
	SpinLock index_lock_;
	Entry *idx_ = nullptr;	// sorted by page; index_lock_
	unsigned n_ = 0, cap_ = 0;
	WaitQueue wq_;		// woken by every invalidate_range_end

	Mutex ids_lock_;
	PfnCache **ids_ = nullptr; // kMaxIds slots, allocated with the first
	u64 serial_ = 0;	   // of the last add_id(); ids_lock_
};

} // namespace kvmmu
