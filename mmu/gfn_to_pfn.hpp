// SPDX-License-Identifier: GPL-2.0
// Host virtual address -> host pfn, for memory that may or may not have a
// struct page (seed 004): ordinary memory resolves through GUP and is
// returned with a page reference; VM_IO/VM_PFNMAP ranges resolve through
// the host page table (follow_pte) and are never referenced.
#pragma once

#include <kvmmu/error.hpp>
#include <kvmmu/types.hpp>

namespace kvmmu {

// hva_to_pfn() flags.
constexpr u32 kPfnWrite = 1u << 0;	  // the access writes: the pfn must be writable
constexpr u32 kPfnMapWritable = 1u << 1;  // a read may get a writable pfn if it costs nothing
constexpr u32 kPfnNoWait = 1u << 2;	  // may sleep, but not wait for I/O
constexpr u32 kPfnAtomic = 1u << 3;	  // must not sleep at all
constexpr u32 kPfnFlagsValid = kPfnWrite | kPfnMapWritable | kPfnNoWait | kPfnAtomic;

struct PfnInfo {
	Pfn pfn;
	bool writable = false;	 // may be mapped writable
	bool referenced = false; // a page reference is held: release_pfn() drops it
	bool has_page = false;	 // a refcounted page
	bool ram = false;	 // system RAM (normal memory), with or without a usable struct page
	// The host mapping's memory type (KVMMU_CACHE_*): a remapped pfn's pte
	// says it (uncached MMIO, a write-combining BAR, cacheable RAM); GUP'd
	// pages are cacheable.
	u8 cache = 0;
	// A remapped pfn only, when hva_to_pfn() was asked to probe `block`
	// bytes: the host maps the whole block-aligned range around hva
	// (block-aligned physically too) to contiguous pfns with the same
	// writability and memory type, so one block leaf may map it.
	u64 contig = 0;
};

// Errors, each distinct:
//   -EPERM      write to memory the host maps read-only
//   -EHWPOISON  the page is poisoned
//   -EINTR      a signal is pending
//   -EAGAIN     it would have to wait for I/O (kPfnNoWait) or sleep (kPfnAtomic)
//   -EFAULT     nothing (valid) is mapped there
//   -EINVAL     bad flags
// (no slot, -ENOENT, and read-only slots, -EPERM, are the caller's: they
// are memslot properties).
// Context: process context unless kPfnAtomic; `mm` is the address space,
// kept alive (mm_count) by the caller.
// `probe`: for a remapped pfn, also find whether the `probe`-byte
// block around hva is mapped contiguously (PfnInfo::contig).
Result<PfnInfo> hva_to_pfn(void *mm, Hva hva, u32 flags, u64 probe = 0);

// Drops what hva_to_pfn() took. `dirty`: the page was mapped writable and
// written; `accessed`: the access happened (the stage-2 accessed bit).
void release_pfn(const PfnInfo &p, bool dirty, bool accessed);

} // namespace kvmmu
