/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmmu VMM ABI: ioctls on /dev/kvmmu and on VM file descriptors.
 *
 * Rules for every ioctl: unknown ioctl numbers fail with ENOTTY; unknown
 * flags and nonzero padding/reserved fields fail with EINVAL; unreadable or
 * unwritable argument memory fails with EFAULT. A failing ioctl changes no
 * state. All structures have fixed sizes and explicit padding.
 *
 * When several things are wrong, the first of these is reported: the
 * argument structure cannot be read (EFAULT); a field is invalid (EINVAL:
 * flags, padding, reserved fields, sizes, alignment, a slot number, a
 * guest range reaching the VM's gpa limit); the guest side (ENOENT: no
 * slot, or for KVMMU_GET_DIRTY_LOG a slot not logging; EPERM: a write to a
 * read-only slot); the user buffer the structure points to (EFAULT). For
 * KVMMU_GPA_ACCESS and KVMMU_GET_DIRTY_LOG all of these are found before
 * any guest memory is accessed or any bit cleared, so ENOENT means "no
 * slot there" whatever the buffer, and EFAULT with a good guest range
 * means the buffer (or, for GPA_ACCESS, host memory behind the slot).
 */
#ifndef _UAPI_LINUX_KVMMU_H
#define _UAPI_LINUX_KVMMU_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVMMU_API_VERSION 1

#define KVMMU_IO 0xE4

/*
 * /dev/kvmmu ioctls
 */

/* Returns KVMMU_API_VERSION. The argument must be 0. */
#define KVMMU_GET_API_VERSION	_IO(KVMMU_IO, 0x00)

/* No VM flags are defined yet. */
#define KVMMU_VM_FLAGS_VALID	0u

struct kvmmu_create_vm {
	__u32 flags;		/* KVMMU_VM_* flags; unknown bits: EINVAL */
	__u32 pad;		/* must be 0 */
	__u64 reserved[3];	/* must be 0 */
};

/*
 * Creates a VM bound to the calling process's address space and returns a
 * VM file descriptor (O_RDWR | O_CLOEXEC). Closing the last reference to it
 * frees everything the VM owns. VM ioctls from a process with a different
 * address space fail with EIO.
 */
#define KVMMU_CREATE_VM		_IOW(KVMMU_IO, 0x01, struct kvmmu_create_vm)

/*
 * VM ioctls
 */

/* Counts of mmu-notifier callbacks the VM received from its address space. */
struct kvmmu_vm_stats {
	__u64 invalidate_range_start;
	__u64 invalidate_range_end;
	__u64 clear_flush_young;
	__u64 clear_young;
	__u64 test_young;
	__u64 change_pte;
	__u64 release;
	__u64 faults;		/* faults that installed or found a mapping */
	__u64 fault_retries;	/* faults repeated after an overlapping invalidation */
	__u64 leaves[3];	/* stage-2 leaves now mapped: base page, 2nd, 3rd level */
	__u64 table_pages;	/* stage-2 table allocations now live (root included) */
	__u64 tlb_flushes;	/* stage-2 TLB invalidations requested */
	__u64 pages_unmapped;	/* base pages unmapped by invalidations */
	__u64 dirty_faults;	/* write faults that marked a page dirty */
};

#define KVMMU_GET_STATS		_IOR(KVMMU_IO, 0x10, struct kvmmu_vm_stats)

/*
 * Fixed properties of a VM, for a VMM to lay guest memory out (as KVM
 * reports the IPA size, KVM_CAP_ARM_VM_IPA_SIZE). The caller zeroes the
 * structure (flags and reserved are checked: EINVAL); the kernel fills in
 * version and the fields that version defines, and zeroes the rest.
 *
 * gpa_bits: guest physical addresses are below 2^gpa_bits, the range the
 * VM's stage-2 format translates. Today: 48 on x86-64 (4-level EPT) and on
 * arm64 with 4K or 64K pages, 47 on arm64 with 16K pages, 52 on ppc64
 * (radix). KVMMU_SET_USER_MEMORY_REGION, KVMMU_PRE_FAULT, KVMMU_TRANSLATE
 * and KVMMU_GPA_ACCESS refuse a guest range reaching 2^gpa_bits with
 * EINVAL, all by the same rule: a slot may end exactly at 2^gpa_bits.
 */
#define KVMMU_VM_INFO_VERSION	1

struct kvmmu_vm_info {
	__u32 version;		/* in: 0; out: KVMMU_VM_INFO_VERSION */
	__u32 flags;		/* in: must be 0 */
	__u32 gpa_bits;		/* out: guest physical address bits */
	__u32 pad;		/* must be 0 */
	__u64 reserved[6];	/* must be 0; out: 0 */
};

#define KVMMU_GET_VM_INFO	_IOWR(KVMMU_IO, 0x11, struct kvmmu_vm_info)

/*
 * Guest memory: a slot maps [guest_phys_addr, + memory_size) of guest
 * physical memory onto [userspace_addr, + memory_size) of the calling
 * process. KVM_SET_USER_MEMORY_REGION's rules: page-aligned fields;
 * memory_size 0 deletes the slot; an existing slot may only move (new
 * guest_phys_addr) or toggle KVMMU_MEM_LOG_DIRTY_PAGES; slots never
 * overlap in guest physical space (EEXIST); slot < KVMMU_MAX_MEMSLOTS; at
 * most 2^31 pages a slot; the guest range must lie below 2^gpa_bits
 * (KVMMU_GET_VM_INFO; it differs between architectures), else EINVAL.
 * READONLY and LOG_DIRTY_PAGES may be combined (nothing is logged). A slot
 * that moves with LOG_DIRTY_PAGES set before and after keeps its dirty
 * bits: pages written before the move and not yet collected are reported
 * by the next KVMMU_GET_DIRTY_LOG, at the same bit (page of the slot).
 */
#define KVMMU_MEM_LOG_DIRTY_PAGES	(1u << 0)
#define KVMMU_MEM_READONLY		(1u << 1)
#define KVMMU_MEM_FLAGS_VALID		(KVMMU_MEM_LOG_DIRTY_PAGES | KVMMU_MEM_READONLY)
#define KVMMU_MAX_MEMSLOTS		32767

struct kvmmu_userspace_memory_region {
	__u32 slot;
	__u32 flags;		/* KVMMU_MEM_* */
	__u64 guest_phys_addr;
	__u64 memory_size;
	__u64 userspace_addr;
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_SET_USER_MEMORY_REGION \
	_IOW(KVMMU_IO, 0x20, struct kvmmu_userspace_memory_region)

/*
 * A guest access: copies len bytes between buf and guest physical memory at
 * gpa, through the VM's stage-2 translation, faulting pages in as a vCPU
 * access would (a write to a write-protected page takes a write fault). The
 * bytes move through the kernel mapping of the host page, so they are the
 * real backing memory. len <= KVMMU_ACCESS_MAX_LEN. Errors, in the order
 * they are looked for: EINVAL bad fields or [gpa, gpa + len) reaching
 * 2^gpa_bits; then, before any page is accessed, ENOENT a page of the range
 * has no slot, EPERM a write to a read-only slot (the first such page in
 * address order decides), EFAULT buf unusable (not readable for a write;
 * not writable for a read, whose buffer is zeroed first); then page by
 * page: EPERM write to a read-only host mapping; EFAULT host address not
 * backed; EHWPOISON; EINTR on a signal. RAM with a struct page, also
 * reserved or driver-owned, is copied. Memory the kernel does not map as
 * cacheable RAM (a device BAR mapped through sysfs resourceN or VFIO, a
 * write-combining mapping, RAM outside the kernel's map) is accessed as
 * a device is: one access of exactly len bytes through an I/O mapping with
 * the host mapping's memory type, which reaches the device once; len must
 * be 1, 2, 4 or 8, gpa aligned to it, and the access must lie in that one
 * page (EINVAL otherwise, before any page of the request is accessed).
 * The value is in the CPU's byte order, as a load or store of that size
 * through the VMM's own mapping gives it. RAM that the host mapping maps
 * uncached or write-combining (a driver's DMA buffer) is not accessed:
 * EOPNOTSUPP.
 * An access is not atomic: on an error of that last kind, pages before the
 * failing one were accessed.
 */
#define KVMMU_ACCESS_WRITE		(1u << 0)
#define KVMMU_ACCESS_FLAGS_VALID	KVMMU_ACCESS_WRITE
#define KVMMU_ACCESS_MAX_LEN		(1u << 20)

struct kvmmu_gpa_access {
	__u64 gpa;
	__u64 len;
	__u64 buf;		/* user pointer */
	__u32 flags;		/* KVMMU_ACCESS_* */
	__u32 pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_GPA_ACCESS	_IOW(KVMMU_IO, 0x21, struct kvmmu_gpa_access)

/*
 * The stage-2 translation of gpa, as it is now (nothing is faulted in; a
 * gpa nothing maps, slot or not, gives mapped = 0; gpa >= 2^gpa_bits is
 * EINVAL). pfn is that of gpa's
 * own page, reported only to CAP_SYS_ADMIN (0 otherwise), like pagemap.
 * YOUNG/DIRTY are the leaf's accessed and dirty state as the format keeps
 * it (formats without a hardware dirty bit report writable leaves dirty);
 * KVMMU_GPA_ACCESS, a software access, does not set them.
 */
#define KVMMU_PROT_READ		(1u << 0)
#define KVMMU_PROT_WRITE	(1u << 1)
#define KVMMU_PROT_EXEC		(1u << 2)

#define KVMMU_MEMTYPE_NORMAL_WB	0
#define KVMMU_MEMTYPE_NORMAL_NC	1
#define KVMMU_MEMTYPE_DEVICE	2

#define KVMMU_TRANSLATE_YOUNG	(1u << 0)
#define KVMMU_TRANSLATE_DIRTY	(1u << 1)

struct kvmmu_translation {
	__u64 gpa;		/* in */
	__u32 flags;		/* in: must be 0; out: KVMMU_TRANSLATE_* */
	__u32 mapped;		/* out: 1 if a leaf maps gpa */
	__u32 level;		/* out: 0 base page, 1 next level, ... */
	__u32 prot;		/* out: KVMMU_PROT_* */
	__u64 size;		/* out: bytes the leaf maps */
	__u32 memtype;		/* out: KVMMU_MEMTYPE_* */
	__u32 pad;		/* must be 0 */
	__u64 pfn;		/* out: host pfn of gpa (CAP_SYS_ADMIN only) */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_TRANSLATE		_IOWR(KVMMU_IO, 0x22, struct kvmmu_translation)

/*
 * Returns the slot's dirty bitmap (bit i: page i of the slot written since
 * the last call), clears it and write-protects the pages reported, like
 * KVM_GET_DIRTY_LOG. Returns 0. The slot must exist and have
 * KVMMU_MEM_LOG_DIRTY_PAGES (else ENOENT, whatever dirty_bitmap is; slot
 * >= KVMMU_MAX_MEMSLOTS: EINVAL); the buffer holds ALIGN(npages, 64) / 8
 * bytes and is written whole before any bit is cleared: if that fails
 * (EFAULT) no bit is lost, though what of the buffer was writable may have
 * been zeroed. Bits follow a slot that moves with logging kept on.
 */
struct kvmmu_dirty_log {
	__u32 slot;
	__u32 pad;		/* must be 0 */
	__u64 dirty_bitmap;	/* user pointer */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_GET_DIRTY_LOG	_IOW(KVMMU_IO, 0x23, struct kvmmu_dirty_log)

/*
 * Faults [gpa, gpa + size) in as accesses of the given kind would (like
 * KVM_PRE_FAULT_MEMORY; a write pre-fault marks the pages dirty in a
 * logging slot, as a write fault does). Page-aligned; size <= 1 GiB per
 * call; [gpa, gpa + size) must lie below 2^gpa_bits (else EINVAL, before
 * anything is faulted). Errors as KVMMU_GPA_ACCESS; on an error, the pages
 * before the failing one stay mapped. Each leaf installed counts as one
 * fault.
 */
struct kvmmu_pre_fault {
	__u64 gpa;
	__u64 size;
	__u32 flags;		/* KVMMU_ACCESS_WRITE */
	__u32 pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_PRE_FAULT_MAX	(1ull << 30)
#define KVMMU_PRE_FAULT		_IOW(KVMMU_IO, 0x24, struct kvmmu_pre_fault)

/*
 * pfn caches (gfn_to_pfn_cache): a kernel mapping of one guest page that
 * the kernel keeps coherent with the host's page tables (docs/pfncache.md).
 *
 * KVMMU_GPC_CREATE makes a cache of [addr, addr + len), a guest physical
 * range (resolved through the memslots at each refresh) or, with
 * KVMMU_GPC_BY_HVA, a range of the caller's address space, and returns
 * its id (in `id`; ids are small numbers, per VM). len must be 1 or more
 * and the range must not cross a page (the kernel's page size); a gpa range
 * must lie below 2^gpa_bits (else EINVAL). At most KVMMU_GPC_MAX caches per
 * VM (ENOSPC). A new cache maps nothing until KVMMU_GPC_REFRESH.
 * KVMMU_GPC_BASELINE selects upstream KVM's refresh rule (retry while any
 * invalidation is in flight in the VM or one ended meanwhile), for
 * comparisons only: it can livelock under unrelated invalidations.
 */
#define KVMMU_GPC_BY_HVA		(1u << 0)
#define KVMMU_GPC_BASELINE		(1u << 1)
#define KVMMU_GPC_CREATE_FLAGS_VALID	(KVMMU_GPC_BY_HVA | KVMMU_GPC_BASELINE)
#define KVMMU_GPC_MAX			1024

struct kvmmu_gpc_create {
	__u64 addr;
	__u32 len;
	__u32 flags;		/* KVMMU_GPC_BY_HVA, KVMMU_GPC_BASELINE */
	__u32 id;		/* out */
	__u32 pad;		/* must be 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_GPC_CREATE	_IOWR(KVMMU_IO, 0x30, struct kvmmu_gpc_create)

/*
 * KVMMU_GPC_REFRESH maps the cache's page (sleeping, if an invalidation of
 * that page is in flight, until it ends). Returns 0; ENOENT (no such id,
 * or no slot at the gpa), EPERM (read-only slot or memory), EFAULT (nothing
 * mapped there), EOPNOTSUPP (device memory), EINTR (a signal).
 * KVMMU_GPC_REFRESH_FORCE drops a valid mapping first and looks up again
 * (for measurements). KVMMU_GPC_DESTROY frees the cache (its id may be
 * reused); a refresh or access running on it at the time completes first.
 */
#define KVMMU_GPC_REFRESH_FORCE		(1u << 0)

struct kvmmu_gpc_op {
	__u32 id;
	__u32 flags;		/* REFRESH: KVMMU_GPC_REFRESH_FORCE; DESTROY: 0 */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_GPC_REFRESH	_IOW(KVMMU_IO, 0x31, struct kvmmu_gpc_op)
#define KVMMU_GPC_DESTROY	_IOW(KVMMU_IO, 0x32, struct kvmmu_gpc_op)

/*
 * Copies [offset, offset + len) of the cache's range to or from buf
 * (KVMMU_ACCESS_WRITE), under the cache's read lock after it checked the
 * mapping valid, never faulting and never refreshing: EAGAIN if the mapping
 * is not valid (an invalidation or a memslot change since the last
 * refresh: refresh and try again). len must be 1 or more and
 * offset + len within a page (EINVAL, before the id is looked up); ENOENT:
 * no such id; offset + len beyond the cache's len: EINVAL; EFAULT: the
 * buffer. A write logs the page dirty if its slot logs.
 */
struct kvmmu_gpc_access {
	__u32 id;
	__u32 flags;		/* KVMMU_ACCESS_WRITE */
	__u32 offset;
	__u32 len;
	__u64 buf;		/* user pointer */
	__u64 reserved[2];	/* must be 0 */
};

#define KVMMU_GPC_ACCESS	_IOW(KVMMU_IO, 0x33, struct kvmmu_gpc_access)

/* A cache's counts since it was created (the counts are ignored on input). */
struct kvmmu_gpc_stats {
	__u32 id;		/* in */
	__u32 pad;		/* must be 0 */
	__u64 refreshes;	/* refreshes that mapped the page */
	__u64 retries;		/* lookups thrown away as stale */
	__u64 waits;		/* sleeps until overlapping invalidations ended */
	__u64 invalidations;	/* invalidate_range_start calls that hit the cache */
	__u64 reserved[4];	/* must be 0 */
};

#define KVMMU_GPC_GET_STATS	_IOWR(KVMMU_IO, 0x34, struct kvmmu_gpc_stats)

#endif /* _UAPI_LINUX_KVMMU_H */
