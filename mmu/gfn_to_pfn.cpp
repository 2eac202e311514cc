// SPDX-License-Identifier: GPL-2.0
#include "gfn_to_pfn.hpp"

#include <kvmmu/lock.hpp>
#include <kvmmu/platform.h>

namespace kvmmu {

namespace {

// Device memory mapped with remap_pfn_range()/io_remap_pfn_range() or
// vmf_insert_pfn(): the pfn comes from the host page table. GUP refuses
// these VMAs and would not run their fault handler, so a missing pte is
// faulted in with fixup_user_fault(). Called with the mmap lock held;
// -EAGAIN when fixup dropped it (the VMA must be looked up again).
// Does the host map the `probe`-byte block around hva (naturally aligned
// in virtual and physical space) to pfns contiguous with `pfn`, all with
// the same writability and memory type? Under the mmap lock.
bool remapped_block(void *mm, Hva hva, u64 pfn, bool writable, unsigned cache, u64 probe)
{
	const u64 base = hva.raw() & ~(probe - 1);
	const u64 first = pfn - ((hva.raw() - base) >> kPageShift);
	if (pfn < (hva.raw() - base) >> kPageShift || ((first << kPageShift) & (probe - 1)))
		return false;
	for (u64 i = 0; i < probe >> kPageShift; i++) {
		u64 q;
		bool w;
		unsigned c;
		if (kvmmu_plat_follow_pfn(mm, base + (i << kPageShift), &q, &w, &c) || q != first + i ||
		    w != writable || c != cache)
			return false; // a hole (not populated yet), another pfn, other attributes
	}
	return true;
}

Result<PfnInfo> remapped_pfn(void *mm, Hva hva, u32 flags, u64 probe)
{
	const bool write = flags & kPfnWrite;
	u64 pfn;
	bool writable;
	unsigned cache;
	// Seed 004: whatever is behind the pte (MMIO, reserved or unmapped
	// RAM, a driver's pages, some with a count of 0) is neither referenced
	// nor ever touched through a struct page; the mmu notifier ends its
	// use, as for the mapping itself.
	int r = kvmmu_plat_follow_pfn(mm, hva.raw(), &pfn, &writable, &cache);
	if (r) {
		bool unlocked = false;
		r = kvmmu_plat_fixup_user_fault(mm, hva.raw(), write, &unlocked);
		if (unlocked)
			return Errno::again;
		if (r)
			return Error::from_kernel(r);
		r = kvmmu_plat_follow_pfn(mm, hva.raw(), &pfn, &writable, &cache);
		if (r)
			return Error::from_kernel(r);
	}
	if (write && !writable)
		return Errno::perm;
	PfnInfo p;
	p.pfn = Pfn(pfn);
	p.referenced = p.has_page = false;
	p.writable = writable && (write || (flags & kPfnMapWritable));
	p.ram = kvmmu_plat_pfn_is_ram(pfn);
	p.cache = u8(cache);
	if (probe > kPageSize && remapped_block(mm, hva, pfn, writable, cache, probe))
		p.contig = probe;
	return p;
}

Error gup_error(long r)
{
	switch (-r) {
	case KVMMU_EHWPOISON:
		return Errno::hwpoison;
	case KVMMU_EBUSY: // FOLL_NOWAIT and the page needs I/O
		return Errno::again;
	case KVMMU_EINTR:
	case KVMMU_ERESTARTSYS:
		return Errno::intr;
	case KVMMU_ENOMEM: // the fault could not allocate (VM_FAULT_OOM)
		return Errno::nomem;
	default:
		return Errno::fault;
	}
}

// The slow path. Called with the mmap lock held; `locked` says on return
// whether it still is (a fault that waited dropped it).
//
// GUP is asked never to wait (NOWAIT): memory that is present, or can be
// faulted in at once, comes back with the lock held all along. A page that
// needs a wait (I/O, a userfaultfd handler filling it) is faulted in with
// kvmmu_plat_fault_one(), which may drop the lock while it waits, killably
// and interruptibly, as the page fault of a process touching that memory
// does; then the VMA may be gone or changed, so everything is looked up
// again under the retaken lock. A plain GUP could not drop the lock: on
// userfaultfd memory it fails at once (-EFAULT) and the handler never
// hears of the fault.
Result<PfnInfo> locked_hva_to_pfn(void *mm, Hva hva, u32 flags, u64 probe, bool &locked)
{
	const bool write = flags & kPfnWrite;
	u32 tried = 0;
	for (bool first = true;; first = false) {
		// Every retry is a chance to notice a signal: a wait may end
		// with one pending, and none must keep this looping.
		if (!first && kvmmu_plat_signal_pending())
			return Errno::intr;
		int vf = kvmmu_plat_vma_flags(mm, hva.raw());
		if (vf < 0 || !(vf & KVMMU_VMA_READ))
			return Errno::fault;
		if (write && !(vf & KVMMU_VMA_WRITE))
			return Errno::perm;
		if (vf & (KVMMU_VMA_IO | KVMMU_VMA_PFNMAP)) {
			auto r = remapped_pfn(mm, hva, flags, probe);
			if (!r && r.error() == Errno::again)
				continue; // the lock was dropped: look again
			return r;
		}
		const u32 gup = write ? KVMMU_GUP_WRITE : 0;
		u64 pfn;
		long r = kvmmu_plat_gup_one(mm, hva.raw(), gup | KVMMU_GUP_NOWAIT, &pfn);
		if (r == -KVMMU_EBUSY && !(flags & kPfnNoWait)) {
			// It must wait: let the fault do so, dropping the lock.
			bool unlocked = false;
			int fr = kvmmu_plat_fault_one(mm, hva.raw(), gup | tried, &unlocked);
			if (unlocked) {
				locked = false;
				if (kvmmu_plat_signal_pending())
					return Errno::intr;
				if (kvmmu_plat_mmap_read_lock_killable(mm))
					return Errno::intr;
				locked = true;
				tried = KVMMU_GUP_TRIED;
				continue; // the VMA may have changed: look again
			}
			if (fr)
				return gup_error(fr);
			kvmmu_plat_cond_resched();
			continue; // faulted in under the lock: take the page
		}
		if (r != 1)
			return gup_error(r);
		PfnInfo p;
		p.pfn = Pfn(pfn);
		p.writable = write;
		p.referenced = p.has_page = p.ram = true;
		// A read that may map writable: if the page is writable without
		// a fault now (no COW to break), take that one instead.
		u64 wpfn;
		if (!write && (flags & kPfnMapWritable) && kvmmu_plat_mm_is_current(mm) &&
		    kvmmu_plat_gup_fast_one(hva.raw(), true, &wpfn) == 1) {
			kvmmu_plat_pfn_put(pfn);
			p.pfn = Pfn(wpfn);
			p.writable = true;
		}
		return p;
	}
}

} // namespace

Result<PfnInfo> hva_to_pfn(void *mm, Hva hva, u32 flags, u64 probe)
{
	if ((flags & ~kPfnFlagsValid) || ((flags & kPfnAtomic) && (flags & kPfnNoWait)) || !mm)
		return Errno::inval;
	const bool write = flags & kPfnWrite;
	const bool current = kvmmu_plat_mm_is_current(mm);
	PfnInfo p;

	// Fast GUP only ever hands out a writable page (it cannot tell a read
	// that would break COW from one that would not), so it serves writes,
	// and reads that may be mapped writable.
	if (current && (write || (flags & kPfnMapWritable))) {
		u64 pfn;
		if (kvmmu_plat_gup_fast_one(hva.raw(), true, &pfn) == 1) {
			p.pfn = Pfn(pfn);
			p.writable = p.referenced = p.has_page = p.ram = true;
			return p;
		}
	}
	if (flags & kPfnAtomic)
		return Errno::again;
	KVMMU_MIGHT_SLEEP();
	if (kvmmu_plat_signal_pending())
		return Errno::intr;
	if (!kvmmu_plat_mm_get(mm))
		return Errno::fault; // the address space is exiting

	kvmmu_plat_mmap_read_lock(mm);
	bool locked = true;
	Result<PfnInfo> res = locked_hva_to_pfn(mm, hva, flags, probe, locked);
	if (locked)
		kvmmu_plat_mmap_read_unlock(mm);
	kvmmu_plat_mm_put(mm);
	return res;
}

void release_pfn(const PfnInfo &p, bool dirty, bool accessed)
{
	if (!p.referenced)
		return;
	if (dirty && p.writable)
		kvmmu_plat_pfn_mark_dirty(p.pfn.raw());
	if (accessed)
		kvmmu_plat_pfn_mark_accessed(p.pfn.raw());
	kvmmu_plat_pfn_put(p.pfn.raw());
}

} // namespace kvmmu
