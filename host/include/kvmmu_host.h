/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test controls of the host platform (host/platform.cpp). Host-only: the
 * kernel platform has no such knobs.
 */
#ifndef KVMMU_HOST_H
#define KVMMU_HOST_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fault injection: the next @n kvmmu_plat_kmalloc() calls succeed, every
 * later one fails (returns NULL) until kvmmu_host_fail_alloc_reset().
 */
void kvmmu_host_fail_alloc_after(long n);
void kvmmu_host_fail_alloc_reset(void);

/* Allocations made by kvmmu_plat_kmalloc() and not yet kvmmu_plat_kfree()d. */
long kvmmu_host_live_allocs(void);

/*
 * A fake host address space (the "mm" of the platform interface) for the
 * core's gfn_to_pfn and fault path. Pages are real host memory whose
 * address is their "physical" address (pfn = address >> 12). Tests script
 * the host side: map and unmap pages, make them read-only, poisoned, or in
 * need of I/O, and call the VM's notifier hooks themselves, as the kernel's
 * mmu_notifier would around such changes.
 */
#include <stdbool.h>
#include <stdint.h>

struct kvmmu_host_mm;

enum {
	KVMMU_HOST_MAP_WRITE = 1u << 0,		/* VMA and ptes writable */
	KVMMU_HOST_MAP_PFNMAP = 1u << 1,	/* VM_IO | VM_PFNMAP, pages without struct page */
	KVMMU_HOST_MAP_HUGE = 1u << 2,		/* backed by 2M pages, mapped at PMD level */
	KVMMU_HOST_MAP_LAZY = 1u << 3,		/* VMA only: pages appear on first GUP/fixup */
	/* PFNMAP memory types (the pte's cache mode; default uncached) */
	KVMMU_HOST_MAP_WC = 1u << 4,		/* write-combining */
	KVMMU_HOST_MAP_CACHED = 1u << 5,	/* cacheable */
};

struct kvmmu_host_mm *kvmmu_host_mm_create(void);
/* Frees the pages; the mm object stays until the last kvmmu_plat_mm_drop(). */
void kvmmu_host_mm_destroy(struct kvmmu_host_mm *mm);
/* The calling thread's current->mm (NULL: a kernel thread). */
void kvmmu_host_set_current_mm(struct kvmmu_host_mm *mm);
/* 0, or -EINVAL for a misaligned range, -EEXIST for an overlap. */
int kvmmu_host_mm_map(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len, unsigned int flags);
/* Removes VMAs and pages of the range (no notifier calls: the test makes them). */
void kvmmu_host_mm_unmap(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len);
/* Replaces the page at @hva by a fresh zeroed one (MADV_DONTNEED + refault, COW). */
void kvmmu_host_mm_replace_page(struct kvmmu_host_mm *mm, uint64_t hva);
void kvmmu_host_mm_protect(struct kvmmu_host_mm *mm, uint64_t hva, uint64_t len, bool writable);
void kvmmu_host_mm_set_poison(struct kvmmu_host_mm *mm, uint64_t hva, bool poisoned);
void kvmmu_host_mm_set_need_io(struct kvmmu_host_mm *mm, uint64_t hva, bool need_io);
/*
 * userfaultfd MISSING mode: the page at @hva is dropped (no pte) and stays
 * missing until the "handler" fills it. A fault that can wait
 * (kvmmu_plat_fault_one()) does so with the mmap lock dropped: it releases
 * the lock, runs the userfault hook and returns "unlocked". The @waits-th
 * such wait fills the page (a fresh zeroed page, before the hook runs);
 * @waits < 0: never. With @signal, every wait ends with the thread's
 * signal pending instead (the page stays missing). A gup with NOWAIT
 * gets -EBUSY; one without it -EFAULT (counted in userfault_no_retry: the
 * kernel warns "FAULT_FLAG_ALLOW_RETRY missing" under DEBUG_VM).
 */
void kvmmu_host_mm_set_userfault(struct kvmmu_host_mm *mm, uint64_t hva, int waits, bool signal);
/* Makes mm_get() fail, as for an exiting process. */
void kvmmu_host_mm_set_exiting(struct kvmmu_host_mm *mm);
/* The host memory backing @hva, or NULL. */
void *kvmmu_host_mm_page(struct kvmmu_host_mm *mm, uint64_t hva);
uint64_t kvmmu_host_mm_pfn(struct kvmmu_host_mm *mm, uint64_t hva);

/* Page state by pfn: references taken by GUP and not yet put, flags set. */
long kvmmu_host_pfn_refs(uint64_t pfn);
bool kvmmu_host_pfn_dirty(uint64_t pfn);
bool kvmmu_host_pfn_accessed(uint64_t pfn);
void kvmmu_host_pfn_clear_flags(uint64_t pfn);
/* References held on all fake pages (leak check). */
long kvmmu_host_pfn_refs_total(void);

/*
 * Speculative page references, as a lockless page-cache lookup or GUP-fast
 * on a stale pte takes them on whatever page a pfn holds now: get and put
 * one on a page from kvmmu_plat_alloc_pages(). The page is freed by
 * whichever comes last, free_pages() or the last put (__free_pages()
 * semantics); a count that would go below zero aborts the test.
 */
void kvmmu_host_page_get(void *va);
void kvmmu_host_page_put(void *va);
int kvmmu_host_page_refs(const void *va);	/* 0 once freed */

/*
 * User copies: the next @n kvmmu_plat_copy_to_user() calls work, every
 * later one fails (copies nothing) until reset with @n < 0.
 */
void kvmmu_host_fail_copy_to_user_after(long n);

/* Counts of platform calls, for checking which path was taken. */
struct kvmmu_host_calls {
	long gup_fast, gup, follow_pfn, fixup, mmap_lock;
	long trace_fault, trace_invalidate_start, trace_invalidate_end, trace_retry, trace_dirty_log;
	long lock_breaks;	/* cond_resched_rwlock_write() dropped the lock */
	long fault;		/* kvmmu_plat_fault_one() calls */
	long vma_lookup;	/* kvmmu_plat_vma_flags() calls */
	long mmap_unlock;	/* mmap lock releases, the faults' own drops included */
	long userfault_waits;	/* faults that waited for the userfaultfd handler */
	long userfault_no_retry; /* a userfault hit by a fault that may not drop the lock */
	long mmap_unheld;	/* VMA/GUP/fault calls without the mmap lock held */
};
void kvmmu_host_get_calls(struct kvmmu_host_calls *out);

/* signal_pending() for the calling thread. */
void kvmmu_host_set_signal_pending(bool pending);

/*
 * Called (on the faulting thread) between a fault's pfn lookup and its
 * taking of the MMU lock: lets tests run an invalidation exactly there.
 */
void kvmmu_host_set_gup_hook(void (*fn)(void *arg), void *arg);
/*
 * Called on the faulting thread during every userfault (or I/O) wait of
 * kvmmu_plat_fault_one(), while the mmap lock is dropped: lets tests
 * change the address space there. Stays set until replaced (NULL: none).
 */
void kvmmu_host_set_userfault_hook(void (*fn)(void *arg), void *arg);
/* mmap read locks the calling thread holds now. */
long kvmmu_host_mmap_held(void);
/* Long-lived mappings (kmap_long, memremap_wb) not yet undone. */
long kvmmu_host_long_maps(void);

/*
 * MMIO through kvmmu_plat_ioremap()/readX/writeX on fake device pages: the
 * accesses so far, oldest first (at most 64 kept; `n` counts them all),
 * and ioremaps not yet undone. wc: the ioremap was write-combining.
 */
struct kvmmu_host_mmio {
	uint64_t pa;
	unsigned size;
	bool write, wc;
	uint64_t value;
};
void kvmmu_host_mmio_log(struct kvmmu_host_mmio *out, unsigned max, unsigned *n);
void kvmmu_host_mmio_log_reset(void);
long kvmmu_host_ioremaps(void);

/*
 * Called once, on the calling thread, at its next kvmmu_plat_write_lock()
 * (before the lock is taken): lets tests run other threads' work exactly
 * where an operation is about to take an rwlock for write.
 */
void kvmmu_host_set_write_lock_hook(void (*fn)(void *arg), void *arg);

/*
 * When kvmmu_plat_cond_resched_rwlock_write() finds a reschedule due: on
 * every @every-th call from now (1: each call), never if @every is 0 (the
 * default). Each time, it drops the lock, yields and takes it again.
 */
void kvmmu_host_set_lock_break(long every);

#ifdef __cplusplus
}
#endif

#endif /* KVMMU_HOST_H */
