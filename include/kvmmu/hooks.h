/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmmu hooks: the extern-C entry points a KVM core calls.
 *
 * kvmmu's own /dev/kvmmu front end (kernel/) is built on these same hooks.
 * They are exported from kvmmu.ko in the KVMMU symbol namespace.
 *
 * Conventions, for every hook:
 *  - Return 0 (or a documented non-negative value) on success and a negative
 *    errno on failure. A failing hook changes no state.
 *  - Bad arguments (NULL objects, empty or inverted ranges, unknown flags)
 *    fail with -EINVAL; they never WARN or crash.
 *  - Addresses are byte addresses; ranges are half-open [start, end).
 */
#ifndef KVMMU_HOOKS_H
#define KVMMU_HOOKS_H

#if defined(__KERNEL__) && !defined(__cplusplus)
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque VM handle. */
struct kvmmu_vm;

/* Counts of mmu-notifier events a VM has been told about. */
struct kvmmu_vm_counters {
	uint64_t invalidate_range_start;
	uint64_t invalidate_range_end;
	uint64_t clear_flush_young;
	uint64_t clear_young;
	uint64_t test_young;
	uint64_t change_pte;
	uint64_t release;
};

/* Module-wide counts, for leak checks. */
struct kvmmu_module_stats {
	uint64_t vms_created;
	uint64_t vms_live;
	/*
	 * VMs a KVM core attached to (kvmmu_vm_attach_core()), and what
	 * those VMs did, summed when each is destroyed: what proves a core's
	 * guests ran on kvmmu's tables.
	 */
	uint64_t core_vms_created;
	uint64_t core_vms_live;
	uint64_t core_faults;		/* faults that mapped */
	uint64_t core_dirty_faults;	/* of them, writes the core logged */
	uint64_t core_invalidations;	/* invalidate_range_start */
	uint64_t core_pages_unmapped;
	uint64_t core_tlb_flushes;	/* calls of the core's tlb_flush_range */
	uint64_t core_cache_maintenance; /* leaves cleaned/invalidated before mapping */
};

/* Valid bits of kvmmu_vm_create()'s @flags (none yet). */
#define KVMMU_VM_CREATE_FLAGS_VALID 0u

/**
 * kvmmu_vm_create() - create a VM
 * @flags: creation flags; bits outside KVMMU_VM_CREATE_FLAGS_VALID: -EINVAL
 * @vmp: receives the new VM on success; untouched on failure
 *
 * Context: process context, may sleep.
 * Return: 0, -EINVAL, or -ENOMEM.
 */
int kvmmu_vm_create(uint32_t flags, struct kvmmu_vm **vmp);

/**
 * kvmmu_vm_destroy() - free a VM and everything it owns
 * @vm: the VM (NULL is ignored)
 *
 * The caller guarantees no other hook runs on @vm concurrently or later;
 * for a VM fed by an mmu_notifier this means after mmu_notifier_unregister().
 * Context: process context, may sleep.
 */
void kvmmu_vm_destroy(struct kvmmu_vm *vm);

/**
 * kvmmu_vm_invalidate_range_start() - host mappings of [@start, @end) go away
 * @vm: the VM
 * @start: first host virtual address of the range
 * @end: end of the range (exclusive), > @start
 * @blockable: false when the caller cannot sleep (mmu_notifier_range_blockable)
 *
 * Every call must be paired with kvmmu_vm_invalidate_range_end() for the
 * same range; calls may nest and overlap. When it returns, no stage-2
 * mapping of the range remains and none is installed until the end.
 * Context: any the mmu_notifier callback allows. With @blockable it may
 * reschedule, dropping the MMU lock between 64 MiB pieces of a long unmap;
 * without, it never sleeps.
 * Return: 0, or -EINVAL for a bad range (then it must not be paired).
 */
int kvmmu_vm_invalidate_range_start(struct kvmmu_vm *vm, uint64_t start, uint64_t end,
				    bool blockable);

/**
 * kvmmu_vm_invalidate_range_end() - end of an invalidation begun with _start
 * Return: 0, or -EINVAL for a bad range or when no invalidation is in flight.
 */
int kvmmu_vm_invalidate_range_end(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_clear_flush_young() - age [@start, @end) and flush
 * Return: 1 if any guest mapping of the range was young, 0 if none, -EINVAL.
 */
int kvmmu_vm_clear_flush_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_clear_young() - age [@start, @end) without flushing
 * Return: 1 if any guest mapping of the range was young, 0 if none, -EINVAL.
 */
int kvmmu_vm_clear_young(struct kvmmu_vm *vm, uint64_t start, uint64_t end);

/**
 * kvmmu_vm_test_young() - is the guest mapping of @hva young?
 * Return: 1 if young, 0 if not, -EINVAL.
 */
int kvmmu_vm_test_young(struct kvmmu_vm *vm, uint64_t hva);

/**
 * kvmmu_vm_change_pte() - the host pte for @hva changed (KSM, COW)
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_change_pte(struct kvmmu_vm *vm, uint64_t hva);

/**
 * kvmmu_vm_release() - the address space backing the VM is going away
 *
 * After this the VM maps nothing and installs nothing; later invalidations
 * are still accepted.
 * Context: process context (mmu_notifier ->release), may sleep: it
 * reschedules between pieces of a long unmap.
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_release(struct kvmmu_vm *vm);

/**
 * kvmmu_vm_get_counters() - read the VM's notifier event counts
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_get_counters(struct kvmmu_vm *vm, struct kvmmu_vm_counters *out);

/**
 * kvmmu_vm_gpa_bits() - the VM's guest physical address size (its IPA size)
 * @vm: the VM
 *
 * Guest physical addresses of @vm are below 2^bits: what its stage-2
 * format translates (x86-64 4-level EPT, arm64 with 4K or 64K pages: 48;
 * arm64 with 16K pages: 47; ppc64 radix: 52). It is fixed for the VM's
 * life. A guest range reaching
 * 2^bits is refused with -EINVAL, by one check, in
 * kvmmu_vm_set_memory_region(), kvmmu_vm_pre_fault(), kvmmu_vm_translate()
 * and kvmmu_vm_access() alike (kvmmu_vm_fault() finds no slot there:
 * -ENOENT). A KVM core reports this as the VM's IPA/physical-address size
 * (as KVM_CAP_ARM_VM_IPA_SIZE does).
 * Context: any.
 * Return: the number of bits (> 0), or -EINVAL for a NULL @vm.
 */
int kvmmu_vm_gpa_bits(struct kvmmu_vm *vm);

/*
 * A KVM core whose CPUs walk the VM's stage-2 table in hardware (for
 * example KVM/arm64 with its VTTBR_EL2 pointing at it; docs/kvm.md).
 * Until a core is attached nothing caches the table's entries and
 * kvmmu only counts TLB invalidations; afterwards every one goes to
 * the core, and RAM is made coherent for the guest before it is mapped.
 */
struct kvmmu_core_ops {
	/*
	 * Invalidate cached translations of [@gpa, @gpa + @size), walk
	 * caches included; @level: the architecture's lookup level (numbered
	 * from the root, arm64's TTL hint) shared by every leaf the range
	 * held, or 0 if they differed or tables went too. Called
	 * after an entry changed and before a table it unlinked is freed,
	 * with kvmmu's MMU lock held: must not sleep.
	 */
	void (*tlb_flush_range)(void *ctx, uint64_t gpa, uint64_t size, int level);
	/* Invalidate every cached translation of the VM. Must not sleep. */
	void (*tlb_flush_all)(void *ctx);
	/*
	 * Clean+invalidate [@va, @va + @size) (the kernel's linear map of
	 * guest RAM) to the point of coherency, before a leaf makes it
	 * visible to the guest; needed unless KVMMU_CORE_FWB. Must not sleep.
	 */
	void (*dcache_clean_poc)(void *ctx, void *va, uint64_t size);
	/*
	 * Invalidate the I-cache for [@va, @va + @size) to the point of
	 * unification, before a leaf makes it executable; needed unless
	 * KVMMU_CORE_DIC. Must not sleep.
	 */
	void (*icache_inval_pou)(void *ctx, void *va, uint64_t size);
};

/* kvmmu_core_config.flags */
#define KVMMU_CORE_FWB		(1u << 0)	/* arm64: HCR_EL2.FWB set (attributes, no clean) */
#define KVMMU_CORE_DIC		(1u << 1)	/* no I-cache maintenance: map RAM executable at once */
#define KVMMU_CORE_FLAGS_VALID	(KVMMU_CORE_FWB | KVMMU_CORE_DIC)

struct kvmmu_core_config {
	uint32_t flags;				/* KVMMU_CORE_* */
	uint32_t ipa_bits;			/* the VM's IPA size */
	const struct kvmmu_core_ops *ops;	/* all four set (see above) */
	void *ctx;				/* passed to every op */
};

/**
 * kvmmu_vm_attach_core() - let a KVM core's CPUs walk @vm's stage-2 table
 * @cfg: the core's operations and the VM's IPA size; copied
 *
 * Once per VM, before its first memslot. Afterwards the VM's guest
 * physical addresses are below 2^@cfg->ipa_bits (kvmmu_vm_gpa_bits());
 * without KVMMU_CORE_DIC RAM is mapped executable only on an exec fault,
 * after an I-cache invalidation; without KVMMU_CORE_FWB each RAM leaf is
 * cleaned to the PoC before it is published.
 * Context: process context.
 * Return: 0; -EINVAL (NULL, unknown flags, an op missing, FWB where the
 * format has no such mode); -EOPNOTSUPP (the format cannot be walked by
 * the hardware with that IPA size, e.g. arm64 4K pages below 40 bits:
 * the core should keep its own MMU for this VM); -EBUSY (attached
 * already, or a memslot exists).
 */
int kvmmu_vm_attach_core(struct kvmmu_vm *vm, const struct kvmmu_core_config *cfg);

/* What the core programs into its MMU (arm64: VTTBR_EL2, VTCR_EL2). */
struct kvmmu_stage2_geometry {
	uint64_t root_pa;	/* physical address of the root table */
	uint32_t page_shift;	/* translation granule */
	uint32_t levels;	/* lookups from root to base page */
	uint32_t start_level;	/* the architecture's number of the root level */
	uint32_t ipa_bits;	/* input address size */
	uint32_t concatenated;	/* root tables concatenated (1: none) */
};

/**
 * kvmmu_vm_stage2_geometry() - where the hardware walk of @vm starts
 * The root never moves for the VM's life.
 * Return: 0; -EINVAL (NULL, or no core attached).
 */
int kvmmu_vm_stage2_geometry(struct kvmmu_vm *vm, struct kvmmu_stage2_geometry *out);

/**
 * kvmmu_vm_unmap() - unmap [@gpa, @gpa + @size) (page-aligned)
 * What a core needs when its own state says guest memory must be faulted
 * in again (a vCPU reset, a set/way cache flush). Leaves that reach
 * outside the range go whole.
 * Context: process context, may sleep.
 * Return: 0; -EINVAL (empty, unaligned, reaching 2^kvmmu_vm_gpa_bits()).
 */
int kvmmu_vm_unmap(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size);

/**
 * kvmmu_vm_write_protect() - write-protect [@gpa, @gpa + @size)
 * @blockable: may sleep between pieces of a long range; false when the
 *	caller holds a spinlock (a dirty-log harvest under the core's lock)
 *
 * The next write to each page faults (the core's dirty logging); what was
 * written through the leaves is handed to the pages (set_page_dirty).
 * Return: 0; -EINVAL as kvmmu_vm_unmap().
 */
int kvmmu_vm_write_protect(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size, bool blockable);

/* Guest memory slot (KVM_SET_USER_MEMORY_REGION's fields). */
struct kvmmu_memory_region {
	uint32_t slot;
	uint32_t flags;			/* KVMMU_MEMSLOT_* */
	uint64_t guest_phys_addr;
	uint64_t memory_size;		/* 0 deletes the slot */
	uint64_t userspace_addr;	/* in the VM's address space */
};

#define KVMMU_MEMSLOT_LOG_DIRTY_PAGES	(1u << 0)
#define KVMMU_MEMSLOT_READONLY		(1u << 1)
#define KVMMU_MEMSLOT_MAX		32767

/**
 * kvmmu_vm_set_memory_region() - create, delete, move or re-flag a slot
 *
 * KVM's rules: page-aligned addresses and size, slot < KVMMU_MEMSLOT_MAX,
 * userspace_addr a user range, no guest-physical overlap with another slot
 * (-EEXIST), an existing slot may only move or toggle dirty logging; the
 * guest range must lie below 2^kvmmu_vm_gpa_bits() (-EINVAL). Mappings
 * through a deleted or moved slot are gone when this returns; turning
 * logging on write-protects the slot. A slot that moves with logging on
 * keeps its dirty bits: they are reported for its new place.
 * Context: process context, may sleep.
 * Return: 0, -EINVAL, -EEXIST, -ENOMEM, or -EIO after kvmmu_vm_release().
 */
int kvmmu_vm_set_memory_region(struct kvmmu_vm *vm, const struct kvmmu_memory_region *r);

/* kvmmu_vm_gfn_to_pfn() flags */
#define KVMMU_PFN_WRITE		(1u << 0)	/* the access writes */
#define KVMMU_PFN_MAP_WRITABLE	(1u << 1)	/* a read may get a writable pfn */
#define KVMMU_PFN_NOWAIT	(1u << 2)	/* do not wait for I/O */
#define KVMMU_PFN_ATOMIC	(1u << 3)	/* do not sleep at all */

struct kvmmu_pfn {
	uint64_t pfn;
	bool writable;		/* may be mapped writable */
	bool referenced;	/* a page reference is held */
	bool has_page;		/* a page GUP referenced (never for VM_IO/VM_PFNMAP) */
};

/**
 * kvmmu_vm_gfn_to_pfn() - the host pfn backing a guest frame
 *
 * Ordinary memory: fast GUP when a writable page is wanted, else GUP under
 * the mmap lock; a page that needs a wait (I/O, a userfaultfd handler) is
 * faulted in with the mmap lock dropped while it waits, interruptibly, as a
 * process's own fault would; the page is returned referenced.
 * VM_IO/VM_PFNMAP memory: the pfn from the host page table (follow_pte),
 * never referenced and never touched through a struct page.
 * Context: process context (may sleep) unless KVMMU_PFN_ATOMIC; the caller
 * must be in the VM's address space for the fast path to be used.
 * Return: 0 and *out filled, or -ENOENT (no slot), -EPERM (write to a
 * read-only slot or read-only host mapping), -EHWPOISON, -EINTR (signal),
 * -EAGAIN (would need I/O with NOWAIT, or to sleep with ATOMIC), -EFAULT
 * (nothing mapped), -EINVAL (bad flags).
 */
int kvmmu_vm_gfn_to_pfn(struct kvmmu_vm *vm, uint64_t gfn, uint32_t flags,
			struct kvmmu_pfn *out);

/**
 * kvmmu_release_pfn() - drop what kvmmu_vm_gfn_to_pfn() took
 * @dirty: the page was mapped writable and written (marks it dirty)
 * @accessed: the guest accessed it (marks it accessed)
 * Only referenced pages are touched.
 */
void kvmmu_release_pfn(const struct kvmmu_pfn *p, bool dirty, bool accessed);

/**
 * kvmmu_vm_invalidate_seq() - snapshot for kvmmu_vm_retry()
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_invalidate_seq(struct kvmmu_vm *vm, uint64_t *seq);

/**
 * kvmmu_vm_retry() - must a mapping built from pfns looked up after @seq be
 * dropped?
 * @start, @end: the guest frames it maps, [start, end)
 *
 * Yes exactly when an invalidation overlapping the range is in flight or
 * ended after the snapshot (invalidations of host memory outside every
 * memslot never count; deleting or moving a slot counts as an
 * invalidation of its host range, so the caller need not hold anything
 * between its snapshot, its gfn_to_pfn and this check; see docs/memory.md for the one over-approximation,
 * after more than 64 guest-memory invalidations since the snapshot). The
 * answer holds only while the caller keeps
 * its mapping from being invalidated unseen (KVM: under its mmu_lock).
 * Return: 1 retry, 0 no, -EINVAL.
 */
int kvmmu_vm_retry(struct kvmmu_vm *vm, uint64_t start, uint64_t end, uint64_t seq);

/* Access kinds for faults */
#define KVMMU_FAULT_WRITE	(1u << 0)
#define KVMMU_FAULT_EXEC	(1u << 1)
/*
 * The core logs this memslot's dirty pages itself (its bitmap or ring):
 * map only base pages, writable only on a write fault, as for a slot with
 * KVMMU_MEMSLOT_LOG_DIRTY_PAGES, and leave the logging to the caller.
 */
#define KVMMU_FAULT_LOG		(1u << 2)

struct kvmmu_fault_info {
	uint32_t level;		/* stage-2 leaf level installed, 0 = base page */
	bool writable;
	uint64_t size;		/* bytes that leaf maps */
	uint64_t pfn;		/* host pfn of the faulting page */
};

/**
 * kvmmu_vm_fault() - handle a stage-2 fault at @gpa
 *
 * Looks the slot up, takes a sequence snapshot, resolves the pfn without
 * the MMU lock, then under the lock maps the largest leaf the slot
 * alignment and host mapping allow, unless an overlapping invalidation
 * happened meanwhile (then it retries). Faults run in parallel. A fault
 * never takes rights away from a leaf a parallel fault installed for the
 * same page; @out reports the leaf as mapped when the fault returns
 * (@out->writable: the leaf allows writes).
 * Context: process context, may sleep.
 * Return: 0 once a leaf that allows @access maps @gpa; or the errors of
 * kvmmu_vm_gfn_to_pfn(); -EPERM also when the memory cannot allow the
 * access at all: an instruction fetch (KVMMU_FAULT_EXEC) from device memory,
 * which is never mapped executable (nothing is mapped then: the core must
 * not re-enter the guest expecting it); -ENOMEM; -EINTR on a signal.
 */
int kvmmu_vm_fault(struct kvmmu_vm *vm, uint64_t gpa, uint32_t access,
		   struct kvmmu_fault_info *out);

/**
 * kvmmu_vm_pre_fault() - fault [@gpa, @gpa + @size) in (page-aligned)
 * Return: 0 or as kvmmu_vm_fault(); -EINVAL for a bad range (empty,
 * unaligned, or reaching 2^kvmmu_vm_gpa_bits()), before anything is faulted.
 */
int kvmmu_vm_pre_fault(struct kvmmu_vm *vm, uint64_t gpa, uint64_t size, uint32_t access);

/* The stage-2 leaf translating a gpa (values equal the uapi's). */
#define KVMMU_LEAF_PROT_READ	(1u << 0)
#define KVMMU_LEAF_PROT_WRITE	(1u << 1)
#define KVMMU_LEAF_PROT_EXEC	(1u << 2)
#define KVMMU_LEAF_MT_NORMAL_WB	0
#define KVMMU_LEAF_MT_NORMAL_NC	1
#define KVMMU_LEAF_MT_DEVICE	2

struct kvmmu_leaf_info {
	bool mapped;
	bool young;
	bool dirty;
	uint32_t level;
	uint32_t prot;		/* KVMMU_LEAF_PROT_* */
	uint32_t memtype;	/* KVMMU_LEAF_MT_* */
	uint64_t size;
	uint64_t pfn;		/* host pfn of gpa's page */
};

/**
 * kvmmu_vm_translate() - look @gpa up in the stage-2 table (no fault)
 * Return: 0 (@out->mapped 0 if nothing maps @gpa), or -EINVAL for a NULL
 * argument or @gpa >= 2^kvmmu_vm_gpa_bits().
 */
int kvmmu_vm_translate(struct kvmmu_vm *vm, uint64_t gpa, struct kvmmu_leaf_info *out);

/**
 * kvmmu_vm_access() - a guest access through the stage-2 table
 * @ubuf: user address (current's address space) to copy from or to
 *
 * Faults pages in like a vCPU access and copies through the kernel
 * mapping of each host page. Errors are found in a fixed order: bad
 * arguments (-EINVAL: empty range, a range reaching 2^kvmmu_vm_gpa_bits(),
 * @ubuf + @len wrapping); then, for the whole range before any page is
 * accessed, a page without a slot (-ENOENT) or, for @write, in a read-only
 * slot (-EPERM), the first such page in address order deciding; then
 * @ubuf (-EFAULT: not a user range, or not readable for @write / writable
 * otherwise; a read's buffer is zeroed first). Only then are pages
 * accessed, in order; an error there (the host memory: -EFAULT, -EPERM,
 * -EHWPOISON, -EINTR, -ENOMEM) leaves the pages before it accessed.
 * Device memory (a page the kernel does not map as cacheable RAM: MMIO, a
 * write-combining mapping, RAM outside the linear map) is accessed as an
 * MMIO emulation helper needs: one readX/writeX of exactly @len bytes
 * through an I/O mapping of the host mapping's type, reaching the device
 * once; @len 1, 2, 4 or 8, @gpa aligned to it, the whole request in that
 * page, else -EINVAL before any page is accessed; RAM the host maps
 * uncached or write-combining: -EOPNOTSUPP (docs/passthrough.md).
 * Context: process context, may sleep.
 * Return: 0, -EINVAL, -ENOENT, -EPERM, -EFAULT, -ENOMEM, -EOPNOTSUPP, or
 * the errors of kvmmu_vm_fault().
 */
int kvmmu_vm_access(struct kvmmu_vm *vm, uint64_t gpa, uint64_t len, uint64_t ubuf, bool write);

/**
 * kvmmu_vm_mmio_access() - one guest access with a kernel buffer
 * @buf: kernel buffer of @len bytes (the value in CPU byte order)
 * @len: 1, 2, 4 or 8; @gpa aligned to it
 *
 * What MMIO emulation in a KVM core needs when a guest access lands on a
 * BAR mapped through a memslot: as kvmmu_vm_access() for one access, RAM
 * or device memory (one readX/writeX of @len bytes that reaches the device
 * once), faulting the page in.
 * Context: process context, may sleep.
 * Return: 0, -EINVAL (NULL, size, alignment, 2^kvmmu_vm_gpa_bits()),
 * -ENOENT, -EPERM, -EOPNOTSUPP, or the errors of kvmmu_vm_fault().
 */
int kvmmu_vm_mmio_access(struct kvmmu_vm *vm, uint64_t gpa, uint32_t len, void *buf, bool write);

/**
 * kvmmu_vm_get_dirty_log() - copy out, clear and re-protect a slot's log
 * @ubuf: user buffer of ALIGN(npages, 64) / 8 bytes
 *
 * As for kvmmu_vm_access(), the guest side is checked before the buffer:
 * a missing or non-logging slot is -ENOENT whatever @ubuf is.
 * Return: the number of dirty pages reported, -ENOENT (no such slot or
 * not logging), -EFAULT (checked before anything is cleared).
 */
int64_t kvmmu_vm_get_dirty_log(struct kvmmu_vm *vm, uint32_t slot, uint64_t ubuf);

struct kvmmu_vm_mmu_stats {
	uint64_t faults;
	uint64_t fault_retries;
	uint64_t dirty_faults;
	uint64_t pages_unmapped;
	uint64_t leaves[3];	/* stage-2 leaves mapped now, by level */
	uint64_t table_pages;	/* live stage-2 table allocations */
	uint64_t tlb_flushes;
};

/**
 * kvmmu_vm_get_mmu_stats() - the VM's fault and stage-2 statistics
 * Return: 0 or -EINVAL.
 */
int kvmmu_vm_get_mmu_stats(struct kvmmu_vm *vm, struct kvmmu_vm_mmu_stats *out);

/**
 * kvmmu_get_module_stats() - module-wide object counts
 * Return: 0 or -EINVAL.
 */
int kvmmu_get_module_stats(struct kvmmu_module_stats *out);

/*
 * pfn caches (gfn_to_pfn_cache; docs/pfncache.md): a kernel mapping of one
 * guest page, kept coherent with the host's page tables, for kernel code
 * that accesses guest memory outside the stage-2 table, used as upstream's
 * kvm_gpc_* are:
 *
 *	kvmmu_gpc_read_lock(gpc);
 *	while (kvmmu_gpc_check(gpc, len) != 1) {
 *		kvmmu_gpc_read_unlock(gpc);
 *		if (kvmmu_gpc_refresh(gpc))
 *			return error;
 *		kvmmu_gpc_read_lock(gpc);
 *	}
 *	... use kvmmu_gpc_khva(gpc) for len bytes ...
 *	kvmmu_gpc_read_unlock(gpc);
 *
 * A refresh retries only for invalidations that overlap the cache's page,
 * and sleeps (never spins) until those in flight end. Caches must be
 * destroyed before their VM.
 */
struct kvmmu_gpc;

/* kvmmu_gpc_init() @flags: upstream's refresh rule, for benchmarks only. */
#define KVMMU_GPC_INIT_BASELINE		(1u << 0)
#define KVMMU_GPC_INIT_FLAGS_VALID	KVMMU_GPC_INIT_BASELINE

/**
 * kvmmu_gpc_init() - create an inactive pfn cache of @vm
 * Context: process context, may sleep.
 * Return: 0, -EINVAL (NULL argument, unknown flags), -ENOMEM.
 */
int kvmmu_gpc_init(struct kvmmu_vm *vm, uint32_t flags, struct kvmmu_gpc **gpcp);

/**
 * kvmmu_gpc_activate_gpa() - point the cache at [@gpa, @gpa + @len)
 *
 * The range must be non-empty, inside one page and below
 * 2^kvmmu_vm_gpa_bits(). It is resolved through the memslots at each
 * refresh; a memslot change makes kvmmu_gpc_check() fail until the next
 * refresh. An active cache moves. Nothing is mapped until a refresh.
 * Context: process context, may sleep.
 * Return: 0 or -EINVAL (nothing changed).
 */
int kvmmu_gpc_activate_gpa(struct kvmmu_gpc *gpc, uint64_t gpa, uint64_t len);

/**
 * kvmmu_gpc_activate_hva() - point the cache at [@hva, @hva + @len) of the
 * VM's address space (non-empty, inside one page)
 * Return: 0 or -EINVAL (nothing changed).
 */
int kvmmu_gpc_activate_hva(struct kvmmu_gpc *gpc, uint64_t hva, uint64_t len);

/**
 * kvmmu_gpc_refresh() - map the cache's page
 *
 * Sleeps while an invalidation overlapping the page is in flight, and
 * looks up again only if one started during its lookup.
 * Context: process context, may sleep; no cache lock held.
 * Return: 0 (the cache is valid), -EINVAL (inactive), -ENOENT (no slot),
 * -EPERM (read-only slot or memory), -EFAULT, -EHWPOISON, -EOPNOTSUPP
 * (device memory), -EIO (address space gone), -EINTR (fatal signal),
 * -ENOMEM; the cache stays invalid on error.
 */
int kvmmu_gpc_refresh(struct kvmmu_gpc *gpc);

/* The reader lock (an rwlock): held across kvmmu_gpc_check() and the access. */
void kvmmu_gpc_read_lock(struct kvmmu_gpc *gpc);
void kvmmu_gpc_read_unlock(struct kvmmu_gpc *gpc);

/**
 * kvmmu_gpc_check() - may @len bytes be accessed through the mapping now?
 * Context: under kvmmu_gpc_read_lock(), which may be taken in atomic
 * context but not in interrupt context (the writers leave interrupts on).
 * Return: 1 yes (until the read lock is dropped), 0 refresh first, -EINVAL
 * (inactive cache, @len 0 or beyond the activated length).
 */
int kvmmu_gpc_check(struct kvmmu_gpc *gpc, uint64_t len);

/* The kernel address of the cache's first byte, after a passing check. */
void *kvmmu_gpc_khva(struct kvmmu_gpc *gpc);

/* Log the cache's guest page dirty (a cache by gpa in a logging slot); under the read lock. */
void kvmmu_gpc_mark_dirty(struct kvmmu_gpc *gpc);

/**
 * kvmmu_gpc_deactivate() - unmap and forget the address (idempotent)
 * Context: process context, may sleep.
 */
void kvmmu_gpc_deactivate(struct kvmmu_gpc *gpc);

/* Deactivate and free (NULL is ignored). Process context, may sleep. */
void kvmmu_gpc_destroy(struct kvmmu_gpc *gpc);

struct kvmmu_gpc_counts {
	uint64_t refreshes;	/* refreshes that mapped the page */
	uint64_t retries;	/* lookups thrown away as stale */
	uint64_t waits;		/* sleeps until overlapping invalidations ended */
	uint64_t invalidations;	/* invalidate_range_start calls that hit the cache */
};

/* Return: 0 or -EINVAL. */
int kvmmu_gpc_get_counts(struct kvmmu_gpc *gpc, struct kvmmu_gpc_counts *out);

#ifdef __cplusplus
}
#endif

#endif /* KVMMU_HOOKS_H */
