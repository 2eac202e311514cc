// SPDX-License-Identifier: GPL-2.0
#include "pfncache.hpp"

#include <kvmmu/alloc.hpp>
#include <kvmmu/platform.h>

namespace kvmmu {

namespace {
constexpr ListenerKey kHubKey{"pfncache"};

Hva page_of(Hva h) { return Hva(h.raw() & ~(kPageSize - 1)); }
} // namespace

// ---------------------------------------------------------------------------
// PfnCache
// ---------------------------------------------------------------------------

PfnCache::PfnCache(Vm &vm, PfnCacheHub &hub, Rule rule) : vm_(vm), hub_(hub), rule_(rule)
{
	KVMMU_LOCK_INIT(refresh_lock_);
	KVMMU_LOCK_INIT(lock_);
}

Result<PfnCache *> PfnCache::create(Vm &vm, Rule rule)
{
	KVMMU_MIGHT_SLEEP();
	if (rule != Rule::exact && rule != Rule::baseline)
		return Errno::inval;
	KVMMU_TRY(hub, PfnCacheHub::of(vm));
	KVMMU_TRY_VOID(hub->reserve());
	PfnCache *c = make<PfnCache>(gfp::kernel | gfp::account, vm, *hub, rule);
	if (!c) {
		hub->unreserve();
		return Errno::nomem;
	}
	return c;
}

PfnCache::~PfnCache()
{
	deactivate();
	hub_.unreserve();
}

Result<PfnCache::Mapping> PfnCache::map(const PfnInfo &p)
{
	Mapping m;
	m.pfn = p.pfn;
	if (kvmmu_plat_pfn_kmappable(p.pfn.raw())) {
		m.va = kvmmu_plat_kmap_long(p.pfn.raw());
	} else if (p.ram) {
		// RAM without a usable struct page (outside the linear map).
		m.remapped = true;
		m.va = kvmmu_plat_memremap_wb(p.pfn.raw() << kPageShift, kPageSize);
		if (!m.va)
			return Errno::nomem;
	} else {
		// MMIO: no cacheable kernel mapping of device registers.
		return Errno::opnotsupp;
	}
	return m;
}

void PfnCache::unmap(const Mapping &m)
{
	if (!m.va)
		return;
	if (m.remapped)
		kvmmu_plat_memunmap(m.va);
	else
		kvmmu_plat_kunmap_long(m.pfn.raw());
}

// Under lock_ exclusive: the cache no longer maps anything; the caller
// unmaps what this returns once it dropped its locks.
PfnCache::Mapping PfnCache::take_locked()
{
	Mapping m = cur_;
	cur_ = Mapping{};
	map_ = nullptr;
	valid_ = false;
	return m;
}

// An overlapping invalidate_range_start: under the hub's index lock.
void PfnCache::invalidate_locked()
{
	WriteGuard g(lock_);
	valid_ = false;
	needs_inval_ = true;
	invalidations_.fetch_add(1, Order::relaxed);
}

// Under refresh_lock_: invalid, out of the index, unmapped, and set(),
// under lock_, changes what the cache is of. Invalid first: once out of
// the index no invalidation finds the cache, so it must not be valid then.
template <class Set>
void PfnCache::reset(Set &&set)
{
	Mapping old;
	{
		WriteGuard g(lock_);
		old = take_locked();
	}
	hub_.unindex(*this);
	{
		WriteGuard g(lock_);
		set();
	}
	unmap(old);
}

Result<void> PfnCache::activate(bool by_gpa, u64 addr, u64 len)
{
	const u64 off = addr & (kPageSize - 1);
	if (!len || len > kPageSize - off)
		return Errno::inval;
	if (by_gpa && !vm_.gpa_range_ok(addr, len))
		return Errno::inval;
	KVMMU_MIGHT_SLEEP();
	MutexGuard m(refresh_lock_);
	reset([&] {
		active_ = true;
		by_gpa_ = by_gpa;
		addr_ = addr;
		off_ = off;
		len_ = len;
	});
	return {};
}

Result<void> PfnCache::activate_gpa(Gpa gpa, u64 len) { return activate(true, gpa.raw(), len); }
Result<void> PfnCache::activate_hva(Hva hva, u64 len) { return activate(false, hva.raw(), len); }

void PfnCache::deactivate()
{
	KVMMU_MIGHT_SLEEP();
	MutexGuard m(refresh_lock_);
	reset([&] { active_ = false; });
}

Result<bool> PfnCache::check(u64 len) const
{
	if (!active_ || !len || len > len_)
		return Errno::inval;
	if (!valid_)
		return false;
	// A cache by gpa resolved its page through the memslots of gen_.
	return !by_gpa_ || gen_ == vm_.memslot_generation();
}

void PfnCache::mark_dirty()
{
	if (active_ && by_gpa_)
		vm_.mark_dirty(to_gfn(Gpa(addr_)));
}

Result<void> PfnCache::refresh(bool force)
{
	KVMMU_MIGHT_SLEEP();
	MutexGuard m(refresh_lock_);
	if (!active_)
		return Errno::inval;
	// A refresh that fails leaves nothing mapped (as upstream): the old
	// page's mapping goes, not only its validity.
	auto unmap_all = [&] {
		Mapping old;
		{
			WriteGuard g(lock_);
			old = take_locked();
		}
		unmap(old);
	};
	if (force)
		unmap_all();
	for (;;) {
		if (vm_.released()) {
			unmap_all();
			return Errno::io;
		}
		bool again = false;
		Result<void> r = refresh_once(again);
		if (!r)
			unmap_all();
		if (!again)
			return r;
		// The lookup was stale, or an overlapping invalidation ended:
		// look again.
		if (kvmmu_plat_signal_pending()) {
			unmap_all();
			return Errno::intr;
		}
		kvmmu_plat_cond_resched();
	}
}

// One attempt; `again` when it must be repeated. The steps and the reason
// for their order are docs/pfncache.md's; the model checks them.
Result<void> PfnCache::refresh_once(bool &again)
{
	{
		ReadGuard g(lock_);
		if (valid_ && (!by_gpa_ || gen_ == vm_.memslot_generation()))
			return {};
	}
	// 1. Where the page is now.
	Hva page;
	u64 gen = 0;
	if (by_gpa_) {
		KVMMU_TRY(hi, vm_.gfn_to_hva(to_gfn(Gpa(addr_))));
		if (hi.readonly)
			return Errno::perm; // caches are written through
		page = hi.hva;
		gen = hi.generation;
	} else {
		page = page_of(Hva(addr_));
	}
	// Indexed under that page before the in-flight check below: an
	// invalidation that starts after the check finds the cache.
	hub_.index(*this, page);

	// 2. No overlapping invalidation in flight: whatever starts from now
	// on sets needs_inval_. One in flight: sleep until it ends.
	u64 snapshot = 0;
	if (rule_ == Rule::exact) {
		bool clear = vm_.if_none_in_flight(page, page + kPageSize, [&] {
			WriteGuard g(lock_);
			needs_inval_ = false;
		});
		if (!clear) {
			waits_.fetch_add(1, Order::relaxed);
			KVMMU_TRY_VOID(hub_.wait_none_in_flight(page));
			again = true;
			return {};
		}
	} else {
		vm_.with_vm_wide_invalidations([&](u64, u64 ends) { snapshot = ends; });
	}
	point(Point::before_lookup);

	// 3. Look up and map, sleeping if need be.
	KVMMU_TRY(p, vm_.hva_to_pfn(page, kPfnWrite));
	auto mp = map(p);
	if (!mp) {
		release_pfn(p, false, false);
		return mp.error();
	}
	const Mapping nm = mp.value();
	point(Point::after_lookup);

	// 4. Publish, unless an overlapping invalidation started meanwhile
	// (or the slots changed): then the page may be stale.
	Mapping old;
	bool stale = false;
	auto publish = [&] {
		WriteGuard g(lock_);
		stale = (rule_ == Rule::exact && needs_inval_) ||
			(by_gpa_ && vm_.memslot_generation() != gen);
		if (stale)
			return;
		old = take_locked();
		cur_ = nm;
		map_ = nm.va;
		gen_ = gen;
		valid_ = true;
	};
	if (rule_ == Rule::exact) {
		publish();
	} else {
		vm_.with_vm_wide_invalidations([&](u64 in_flight, u64 ends) {
			if (in_flight || ends != snapshot)
				stale = true;
			else
				publish();
		});
	}
	// The mapping, not a reference, is what the cache keeps: the notifier
	// ends its use.
	release_pfn(p, false, !stale);
	if (stale) {
		unmap(nm);
		retries_.fetch_add(1, Order::relaxed);
		point(Point::retrying);
		again = true;
		return {};
	}
	unmap(old);
	refreshes_.fetch_add(1, Order::relaxed);
	point(Point::after_publish);
	return {};
}

PfnCacheStats PfnCache::stats() const
{
	PfnCacheStats s{};
	s.refreshes = refreshes_.load(Order::relaxed);
	s.retries = retries_.load(Order::relaxed);
	s.waits = waits_.load(Order::relaxed);
	s.invalidations = invalidations_.load(Order::relaxed);
	return s;
}

// ---------------------------------------------------------------------------
// PfnCacheHub
// ---------------------------------------------------------------------------

PfnCacheHub::PfnCacheHub(Vm &vm) : VmListener(kHubKey), vm_(vm)
{
	KVMMU_LOCK_INIT(grow_lock_);
	KVMMU_LOCK_INIT(index_lock_);
	KVMMU_LOCK_INIT(wq_);
	KVMMU_LOCK_INIT(ids_lock_);
}

PfnCacheHub::~PfnCacheHub()
{
	kvmmu_plat_kvfree(idx_);
	kvmmu_plat_kvfree(ids_);
}

Result<PfnCacheHub *> PfnCacheHub::of(Vm &vm)
{
	KVMMU_TRY(l, vm.attach_listener(kHubKey, [&]() -> VmListener * {
		return make<PfnCacheHub>(gfp::kernel | gfp::account, vm);
	}));
	return static_cast<PfnCacheHub *>(l);
}

PfnCacheHub *PfnCacheHub::find(Vm &vm) { return static_cast<PfnCacheHub *>(vm.find_listener(kHubKey)); }

void PfnCacheHub::detach()
{
	// The VM goes: so do the caches its file created. (Caches a KVM core
	// created through the hooks must be gone already.)
	if (ids_)
		for (unsigned i = 0; i < kMaxIds; i++)
			if (ids_[i])
				destroy(ids_[i]);
	destroy(this);
}

Result<void> PfnCacheHub::reserve()
{
	MutexGuard m(grow_lock_);
	if (reserved_ == cap_) {
		const unsigned ncap = cap_ ? cap_ * 2 : 16;
		auto *n = static_cast<Entry *>(
			kvmmu_plat_kvmalloc(sizeof(Entry) * ncap, (gfp::kernel | gfp::account).raw()));
		if (!n)
			return Errno::nomem;
		Entry *old;
		{
			SpinGuard g(index_lock_);
			for (unsigned i = 0; i < n_; i++)
				n[i] = idx_[i];
			old = idx_;
			idx_ = n;
			cap_ = ncap;
		}
		kvmmu_plat_kvfree(old);
	}
	reserved_++;
	return {};
}

void PfnCacheHub::unreserve()
{
	MutexGuard m(grow_lock_);
	reserved_--;
}

// The first entry whose page is >= `page`.
unsigned PfnCacheHub::lower_bound(u64 page) const
{
	unsigned lo = 0, hi = n_;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (idx_[mid].page < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void PfnCacheHub::unindex_locked(PfnCache &c)
{
	if (!c.indexed_)
		return;
	unsigned i = lower_bound(c.page_.raw());
	while (i < n_ && idx_[i].c != &c)
		i++;
	if (KVMMU_UNLIKELY(i == n_))
		kvmmu_plat_bug(__FILE__, __LINE__, "pfn cache missing from its index");
	for (; i + 1 < n_; i++)
		idx_[i] = idx_[i + 1];
	n_--;
	c.indexed_ = false;
}

void PfnCacheHub::unindex(PfnCache &c)
{
	SpinGuard g(index_lock_);
	unindex_locked(c);
}

// (Re)indexes c under `page`; a cache that moves is invalid until its
// next publish. Never allocates: create() reserved the entry.
void PfnCacheHub::index(PfnCache &c, Hva page)
{
	SpinGuard g(index_lock_);
	if (c.indexed_ && c.page_ == page)
		return;
	unindex_locked(c);
	unsigned i = lower_bound(page.raw() + 1); // after equal pages
	for (unsigned k = n_; k > i; k--)
		idx_[k] = idx_[k - 1];
	idx_[i] = Entry{page.raw(), &c};
	n_++;
	c.indexed_ = true;
	c.page_ = page;
	WriteGuard w(c.lock_);
	c.valid_ = false;
}

void PfnCacheHub::invalidate_start(Hva start, Hva end)
{
	SpinGuard g(index_lock_);
	for (unsigned i = lower_bound(page_of(start).raw()); i < n_ && idx_[i].page < end.raw(); i++)
		idx_[i].c->invalidate_locked();
}

void PfnCacheHub::invalidate_end(Hva, Hva)
{
	// The range is out of the in-flight set: refreshes waiting for it
	// look again.
	wq_.wake_all();
}

void PfnCacheHub::released()
{
	{
		SpinGuard g(index_lock_);
		for (unsigned i = 0; i < n_; i++)
			idx_[i].c->invalidate_locked();
	}
	// No end will be reported any more (the notifier is gone): a refresh
	// waiting for one wakes and fails.
	wq_.wake_all();
}

Result<void> PfnCacheHub::wait_none_in_flight(Hva page)
{
	return wq_.wait_killable(
		[&] { return vm_.released() || !vm_.in_flight_overlaps(page, page + kPageSize); });
}

Result<u32> PfnCacheHub::add_id(PfnCache *c)
{
	MutexGuard m(ids_lock_);
	if (!ids_) {
		ids_ = static_cast<PfnCache **>(kvmmu_plat_kvmalloc(
			sizeof(PfnCache *) * kMaxIds, (gfp::kernel | gfp::account | gfp::zero).raw()));
		if (!ids_)
			return Errno::nomem;
	}
	for (u32 i = 0; i < kMaxIds; i++) {
		if (!ids_[i]) {
			ids_[i] = c;
			c->id_refs_.store(1);
			c->serial_ = ++serial_;
			return i;
		}
	}
	return Errno::nospc;
}

Result<PfnCache *> PfnCacheHub::get(u32 id)
{
	MutexGuard m(ids_lock_);
	if (id >= kMaxIds || !ids_ || !ids_[id])
		return Errno::noent;
	ids_[id]->id_refs_.fetch_add(1);
	return ids_[id];
}

void PfnCacheHub::put(PfnCache *c)
{
	if (c->id_refs_.fetch_sub(1) == 1)
		destroy(c);
}

Result<void> PfnCacheHub::remove_id(u32 id, u64 serial)
{
	PfnCache *c;
	{
		MutexGuard m(ids_lock_);
		if (id >= kMaxIds || !ids_ || !ids_[id] || (serial && ids_[id]->serial_ != serial))
			return Errno::noent;
		c = ids_[id];
		ids_[id] = nullptr;
	}
	put(c);
	return {};
}

} // namespace kvmmu
