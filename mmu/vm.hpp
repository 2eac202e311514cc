// SPDX-License-Identifier: GPL-2.0
// A VM: guest physical memory (memslots over the VMM's address space), its
// stage-2 page table, and the coherence of that table with the host's page
// tables through the mmu-notifier callbacks.
//
// Locking (docs/locking.md):
//   slots_ update mutex > SRCU read section > mmu_lock_ > spare_lock_
//   mmu_lock_ (RwLock) shared: faults installing mappings, aging, lookups;
//                      exclusive: invalidation, unmapping, write-protection.
//   Invalidation tracking (inval_) changes only under mmu_lock_ exclusive.
#pragma once

#include <kvmmu/atomic.hpp>
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/lock.hpp>
#include <kvmmu/types.hpp>

#include "device_access.hpp"
#include "gfn_to_pfn.hpp"
#include "invalidation.hpp"
#include "listener.hpp"
#include "memslot.hpp"
#include "pgtable/mm_ops.hpp"
#include "pgtable/pgtable.hpp"
#include "stage2.hpp"

namespace kvmmu {

// Access kinds of a fault (KVMMU_FAULT_* in hooks.h).
constexpr u32 kAccessWrite = 1u << 0;
constexpr u32 kAccessExec = 1u << 1;
// The core logs the slot's dirty pages: base pages, writable only on a
// write fault (KVMMU_FAULT_LOG).
constexpr u32 kAccessLog = 1u << 2;
constexpr u32 kAccessValid = kAccessWrite | kAccessExec | kAccessLog;

struct FaultResult {
	unsigned level = 0;	// stage-2 leaf level installed (0: base page)
	u64 size = 0;		// bytes that leaf maps
	Pfn pfn;		// host pfn of the faulting page
	bool writable = false;	// mapped writable
};

struct VmStats {
	kvmmu_vm_counters notifier;
	u64 faults, fault_retries, dirty_faults, pages_unmapped;
	u64 leaves[3];
	u64 table_pages, tlb_flushes;
};

class Vm : Pinned, MemslotListener {
public:
	using Pt = pgt::PageTable<S2Format>;

	// Process context; may sleep. The VM keeps the calling process's mm
	// (if it has one) as the address space its memslots refer to.
	static Result<Vm *> create(u32 flags);
	~Vm();

	Result<void> set_memory_region(const MemslotDesc &d);

	// Guest physical addresses the VM's stage-2 format translates:
	// [0, 2^gpa_bits()), the VM's IPA size (KVMMU_GET_VM_INFO). A property
	// of each VM (today every VM of a build has its architecture's format).
	unsigned gpa_bits() const { return gpa_bits_; }
	u64 gpa_limit() const { return gpa_bits_ >= 64 ? ~u64(0) : u64(1) << gpa_bits_; }
	// The one check of a guest range [gpa, gpa + size) against that limit,
	// made by set_memory_region, pre_fault, translate (size 1) and access:
	// every byte must lie below gpa_limit(), else EINVAL.
	bool gpa_range_ok(u64 gpa, u64 size) const
	{
		return gpa < gpa_limit() && size <= gpa_limit() - gpa;
	}

	// --- A KVM core whose CPUs walk the table (hooks.h, kvmmu_core_*) ---

	// Binds the core's TLB and cache maintenance and its IPA size; once,
	// before the first memslot. -EOPNOTSUPP: the format cannot be walked
	// with that IPA size; -EBUSY: bound already or slots exist.
	Result<void> attach_core(const kvmmu_core_config &cfg);
	// Where the hardware walk starts (after attach_core()).
	Result<kvmmu_stage2_geometry> geometry() const;
	// Unmaps [gpa, gpa + size) (page-aligned; process context).
	Result<void> unmap(Gpa gpa, u64 size);
	// Write-protects [gpa, gpa + size); never sleeps unless may_yield.
	Result<void> write_protect(Gpa gpa, u64 size, bool may_yield);
	u64 cache_maintenance() const { return ops_.dcache_ops.load(Order::relaxed); }

	// mmu-notifier callbacks.
	Result<void> invalidate_range_start(Hva start, Hva end, bool blockable);
	Result<void> invalidate_range_end(Hva start, Hva end);
	Result<bool> clear_flush_young(Hva start, Hva end);
	Result<bool> clear_young(Hva start, Hva end);
	Result<bool> test_young(Hva hva);
	Result<void> change_pte(Hva hva);
	void release();

	// Invalidation tracking for callers with their own fault path: take
	// seq, look up pfns, then under their own serialisation ask retry().
	u64 invalidate_seq() const { return inval_.seq(); }
	Result<bool> retry(Gfn start, Gfn end, u64 seq);
	// Benchmarks only: decide retries by the tracker's legacy rule (every
	// invalidation counts; a short history) instead of the exact one.
	void set_legacy_retry(bool legacy);

	// The pfn backing `gfn` (kPfn* flags). Memslot rules on top of
	// hva_to_pfn(): -ENOENT without a slot, -EPERM writing a read-only slot
	// (whose pfns are never writable).
	Result<PfnInfo> gfn_to_pfn(Gfn gfn, u32 flags);

	// A guest access to `gpa` missed in the stage-2 table: map it.
	Result<FaultResult> fault(Gpa gpa, u32 access);
	Result<void> pre_fault(Gpa gpa, u64 size, u32 access);
	// -EINVAL for a gpa beyond gpa_limit(); else the leaf (maybe unmapped).
	Result<pgt::Leaf> translate(Gpa gpa);
	// Copies between the user buffer `ubuf` and guest memory through the
	// stage-2 table, faulting as a vCPU would.
	// A page the kernel does not map as cacheable RAM (device memory, a
	// write-combining or non-linear-map host mapping) is accessed through
	// `dev` (nullptr: -EOPNOTSUPP), only as a request of one naturally
	// aligned access of 1, 2, 4 or 8 bytes (else -EINVAL; a request over
	// several pages that reaches device memory fails before any page is
	// accessed).
	Result<void> access(Gpa gpa, u64 len, u64 ubuf, bool write, const DeviceAccess *dev = nullptr);
	// One access of 1, 2, 4 or 8 bytes (gpa aligned to it) between a
	// kernel buffer and guest memory, RAM or device, as access() makes
	// it: what MMIO emulation in a KVM core needs. -EINVAL for other
	// sizes or alignments; then as access().
	Result<void> access_kernel(Gpa gpa, u64 len, u8 *buf, bool write, const DeviceAccess *dev);
	// Copies the slot's dirty bitmap to the user buffer, clearing it and
	// write-protecting what it reports. Returns the number of dirty pages.
	Result<u64> get_dirty_log(u32 slot, u64 ubuf);

	// --- For components built on mmu/ (pfncache/, nested/, tce/) ---

	// The component's listener of this VM (listener.hpp), or nullptr.
	// Lock-free; a listener once attached stays until the VM goes.
	VmListener *find_listener(const ListenerKey &key) const;
	// Finds the component's listener or attaches the one make() returns
	// (nullptr: -ENOMEM). Concurrent callers for one key get one listener.
	// Process context; may sleep.
	template <class Make> Result<VmListener *> attach_listener(const ListenerKey &key, Make &&make);

	// Where a guest frame lives in the host now, and the memslot
	// generation that says so.
	struct HvaInfo {
		Hva hva;
		u64 generation;
		bool readonly;
	};
	// -ENOENT: no slot maps `gfn`.
	Result<HvaInfo> gfn_to_hva(Gfn gfn);
	// The generation of the memslot set in use now (any context).
	u64 memslot_generation() const { return slots_.generation(); }
	// hva_to_pfn() in this VM's address space (-EFAULT without one).
	Result<PfnInfo> hva_to_pfn(Hva hva, u32 flags);
	// Logs `gfn` as dirty if its slot logs dirty pages (a write that did
	// not go through the stage-2 table).
	void mark_dirty(Gfn gfn);
	// Runs fn() with the MMU lock held for read if no invalidation that
	// overlaps [start, end) is in flight, and says whether it did: fn runs
	// in a state in which every such invalidation has already reported its
	// start to the listeners (and its end, if it ended). fn must not sleep.
	template <class Fn> bool if_none_in_flight(Hva start, Hva end, Fn &&fn);
	// Is an invalidation overlapping [start, end) in flight now?
	bool in_flight_overlaps(Hva start, Hva end);
	// Runs fn(in_flight, ends) under the MMU lock held for read: the
	// number of invalidations in flight anywhere in the VM and of all that
	// ended (VM-wide; relevant or not). The upstream pfn-cache rule's view
	// (benchmark baselines only). fn must not sleep.
	template <class Fn> void with_vm_wide_invalidations(Fn &&fn);

	VmStats stats();
	kvmmu_vm_counters counters() const;
	u64 invalidations_in_flight();
	bool released() const { return released_.load(); }

	// Long write-locked operations (invalidations that may block, release,
	// slot deletion, starting dirty logging) work in pieces of this much
	// guest physical space, cut only between leaves, and let waiters and
	// the scheduler in between pieces. Each piece is one TLB flush.
	static constexpr u64 kPieceBytes = u64(64) << 20;
	// A power of two, at least a page (tests use small pieces); before the
	// VM is shared.
	Result<void> set_piece_bytes(u64 bytes);

	static kvmmu_module_stats module_stats();

private:
	template <class T, class... Args> friend T *make(Gfp, Args &&...);
	Vm(void *mm);
	Result<void> init();

	// MemslotListener
	void committed(const Memslot *old_slot, const Memslot *new_slot) override;
	void retiring(const Memslot *old_slot) override;

	// TLB invalidation is the core's if one walks the table in hardware
	// (attach_core()), else only counted: nothing caches its entries.
	class S2Ops final : public pgt::CachedMmOps {
	public:
		explicit S2Ops(pgt::TableCache &c) : CachedMmOps(c) {}
		void flush_tlb_range(u64 ia, u64 size) override { flush(ia, size, 0); }
		void flush_tlb_leaves(u64 ia, u64 size, unsigned arch_level) override
		{
			flush(ia, size, int(arch_level));
		}
		void flush(u64 ia, u64 size, int level)
		{
			flushes.fetch_add(1, Order::relaxed);
			if (core)
				core->tlb_flush_range(core_ctx, ia, size, level);
		}
		// Before a RAM leaf of [pfn, pfn + size) is published: clean it
		// to the PoC (if `clean`, without FWB) and, if it will be
		// executable, invalidate the I-cache (if `inval`, without DIC).
		void maintain(Pfn pfn, u64 size, bool clean, bool inval);
		Atomic<u64> flushes;
		Atomic<u64> dcache_ops;
		const kvmmu_core_ops *core = nullptr;
		void *core_ctx = nullptr;
		u32 core_flags = 0;
	};

	Result<void> access_pages(Gpa gpa, u64 len, u64 ubuf, u32 acc, u8 *bounce, const DeviceAccess *dev,
				  bool user);
	Result<void> slots_cover(Gpa gpa, u64 len, bool write);
	Result<bool> is_device_page(Gpa gpa);
	Result<bool> access_device(Gpa gpa, u64 len, pgt::Leaf l, bool write, u8 *bounce,
				   const DeviceAccess &dev);
	Result<FaultResult> fault_slot(Gpa gpa, u32 access, bool &again);
	Result<FaultResult> fault_once(const Memslot &slot, Gpa gpa, u32 access, bool &again);
	static bool block_fits(const Memslot &slot, Gpa gpa, Hva hva, u64 size);
	unsigned pick_level(const Memslot &slot, Gpa gpa, Hva hva, const PfnInfo &p, bool logging);
	template <class Fn> void in_pieces(u64 start, u64 end, bool may_yield, Fn &&fn);
	// Calls fn(a, b) for each slot's part [a, b) of the guest range
	// [start, end), retiring slots included: where anything can be mapped.
	template <class Fn> static void for_each_slot_part(const MemslotSet &set, u64 start, u64 end, Fn &&fn);
	void zap_hva(const MemslotSet &set, Hva start, Hva end, bool may_yield);
	void zap_gpa(u64 start, u64 end, bool may_yield);
	void zap_checked(u64 ia, u64 size, pgt::LeafSink &sink);
	Result<bool> age_hva(Hva start, Hva end, bool flush);
	Result<void> topup(pgt::TableCache &c);
	void give_back(pgt::TableCache &c);

	void *mm_;	// mm_count held; may be nullptr (no backing)
	unsigned gpa_bits_ = S2Format::ia_bits;
	Memslots slots_;
	RwLock mmu_lock_;
	pgt::TableCache vm_cache_;	// for operations outside faults (never split)
	S2Ops ops_;
	Pt *pt_ = nullptr;
	InvalidationTracker inval_;

	SpinLock spare_lock_;		// table pages left over by faults
	pgt::TableCache spare_;

	Mutex listener_lock_;		// serialises attach_listener()
	Atomic<VmListener *> listeners_; // a list, pushed under mmu_lock_ write, never popped
	u64 ends_total_ = 0;		// every invalidate_range_end accepted; mmu_lock_ write

	Atomic<bool> released_;
	u64 piece_bytes_ = kPieceBytes;
	struct Counters {
		Atomic<u64> invalidate_range_start;
		Atomic<u64> invalidate_range_end;
		Atomic<u64> clear_flush_young;
		Atomic<u64> clear_young;
		Atomic<u64> test_young;
		Atomic<u64> change_pte;
		Atomic<u64> release;
		Atomic<u64> faults;
		Atomic<u64> fault_retries;
		Atomic<u64> dirty_faults;
		Atomic<u64> pages_unmapped;
	} counters_;
};

inline VmListener *Vm::find_listener(const ListenerKey &key) const
{
	for (VmListener *l = listeners_.load(Order::acquire); l; l = l->next_)
		if (l->key_ == &key)
			return l;
	return nullptr;
}

template <class Make>
Result<VmListener *> Vm::attach_listener(const ListenerKey &key, Make &&make)
{
	KVMMU_MIGHT_SLEEP();
	MutexGuard m(listener_lock_);
	if (VmListener *l = find_listener(key))
		return l;
	VmListener *l = make();
	if (!l)
		return Errno::nomem;
	// Published under the MMU lock: an invalidation reports to every
	// listener or (started before) to none of the new one's.
	WriteGuard g(mmu_lock_);
	l->next_ = listeners_.load(Order::relaxed);
	listeners_.store(l, Order::release);
	return l;
}

template <class Fn>
void Vm::for_each_slot_part(const MemslotSet &set, u64 start, u64 end, Fn &&fn)
{
	set.for_each_hva_overlap(Hva(0), Hva(~u64(0)), [&](const Memslot &s) {
		const u64 a = max(start, to_gpa(s.base_gfn()).raw());
		const u64 b = min(end, to_gpa(s.end_gfn()).raw());
		if (a < b)
			fn(a, b);
	});
}

template <class Fn>
bool Vm::if_none_in_flight(Hva start, Hva end, Fn &&fn)
{
	ReadGuard g(mmu_lock_);
	if (inval_.in_flight_overlaps(start.raw(), end.raw()))
		return false;
	fn();
	return true;
}

template <class Fn>
void Vm::with_vm_wide_invalidations(Fn &&fn)
{
	ReadGuard g(mmu_lock_);
	fn(u64(inval_.in_flight()), ends_total_);
}

} // namespace kvmmu
