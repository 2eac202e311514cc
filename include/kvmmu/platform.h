/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The platform interface: everything kvmmu's C++ core needs from the kernel.
 *
 * The C++ core never includes a Linux header. It calls these extern-C
 * functions instead; kernel/platform.c implements them in the module and
 * host/platform.cpp implements them in userspace for host tests. Every
 * implementation is a direct call to the corresponding kernel facility:
 * policy and checks live in the C++ core, not here.
 *
 * Lock and key objects are opaque storage owned by the caller; their sizes
 * and alignments come from <kvmmu_layout.h>, generated from the kernel's own
 * headers at build time (kernel/layout.c).
 */
#ifndef KVMMU_PLATFORM_H
#define KVMMU_PLATFORM_H

#if defined(__KERNEL__) && !defined(__cplusplus)
#include <linux/types.h>
#else
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Allocation context. Exactly one of the KIND values, optionally or-ed with
 * modifiers. Core code always states the context; there is no default.
 */
enum kvmmu_gfp {
	KVMMU_GFP_KERNEL = 0,		/* may sleep and reclaim */
	KVMMU_GFP_NOWAIT = 1,		/* never sleeps, no reserves */
	KVMMU_GFP_ATOMIC = 2,		/* never sleeps, may use reserves */
	KVMMU_GFP_KIND_MASK = 3,
	KVMMU_GFP_ZERO = 1u << 2,	/* zero the memory */
	KVMMU_GFP_ACCOUNT = 1u << 3,	/* charge to the caller's memcg */
	KVMMU_GFP_NOWARN = 1u << 4,	/* no allocation-failure splat */
	KVMMU_GFP_VALID_MASK = (1u << 5) - 1,
};

/* kmalloc()/kfree(). kmalloc of a power-of-two size is aligned to it. */
void *kvmmu_plat_kmalloc(size_t size, unsigned int gfp);
void kvmmu_plat_kfree(const void *ptr);
/* kvmalloc()/kvfree(): large arrays (GFP_KERNEL kinds only). */
void *kvmmu_plat_kvmalloc(size_t size, unsigned int gfp);
void kvmmu_plat_kvfree(const void *ptr);

/*
 * Pages: 2^order contiguous, naturally aligned pages from the page
 * allocator, addressed through the kernel's linear map. The core never
 * touches their reference counts: free_pages() drops the allocation's one
 * reference (__free_pages), so a speculative reference someone else holds
 * (a lockless page-cache or GUP-fast lookup on a recycled pfn) frees the
 * pages when it is dropped, and never underflows.
 */
void *kvmmu_plat_alloc_pages(unsigned int order, unsigned int gfp);
void kvmmu_plat_free_pages(void *va, unsigned int order);
/*
 * A page-table page's own count of users (the stage-2 engine's 1 + valid
 * entries), kept in the page (the page-table fields of struct page,
 * pt_frag_refcount), apart from its reference count. Undefined until set;
 * set it to 0 before freeing.
 */
void kvmmu_plat_table_count_set(void *va, int count);
int kvmmu_plat_table_count_add_return(void *va, int n);
int kvmmu_plat_table_count(const void *va);
uint64_t kvmmu_plat_virt_to_phys(const void *va);
void *kvmmu_plat_phys_to_virt(uint64_t pa);

/* Locks. @lock points at storage of the size <kvmmu_layout.h> gives. */
void kvmmu_plat_spin_init(void *lock, const char *name, void *key);
void kvmmu_plat_spin_lock(void *lock);
void kvmmu_plat_spin_unlock(void *lock);
void kvmmu_plat_spin_assert_held(const void *lock);

void kvmmu_plat_rwlock_init(void *lock, const char *name, void *key);
void kvmmu_plat_read_lock(void *lock);
void kvmmu_plat_read_unlock(void *lock);
void kvmmu_plat_write_lock(void *lock);
void kvmmu_plat_write_unlock(void *lock);
void kvmmu_plat_rwlock_assert_held(const void *lock);
void kvmmu_plat_rwlock_assert_held_write(const void *lock);

void kvmmu_plat_mutex_init(void *lock, const char *name, void *key);
void kvmmu_plat_mutex_destroy(void *lock);
void kvmmu_plat_mutex_lock(void *lock);
void kvmmu_plat_mutex_unlock(void *lock);
void kvmmu_plat_mutex_assert_held(const void *lock);

/* Sleepable RCU. @ssp points at storage of KVMMU_SRCU_SIZE. */
int kvmmu_plat_srcu_init(void *ssp, const char *name, void *key);
void kvmmu_plat_srcu_cleanup(void *ssp);
int kvmmu_plat_srcu_read_lock(void *ssp);
void kvmmu_plat_srcu_read_unlock(void *ssp, int idx);
/* Expedited (memslot updates are VMM ioctls; KVM's are expedited too). */
void kvmmu_plat_synchronize_srcu(void *ssp);

/* Is [hva, hva + size) a valid range of user addresses (access_ok)? */
bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size);
/* untagged_addr(): @hva without an address tag (arm64 TBI); else @hva. */
uint64_t kvmmu_plat_untagged_addr(uint64_t hva);

/* Scheduling context checks. */
void kvmmu_plat_might_sleep(const char *file, int line);
void kvmmu_plat_cond_resched(void);
/*
 * cond_resched_rwlock_write(): with @lock (an rwlock) held for write and no
 * other spinning lock, drops it if a reschedule is due or another CPU waits
 * for it, reschedules, and takes it again. Nonzero if the lock was dropped.
 */
int kvmmu_plat_cond_resched_rwlock_write(void *lock);
bool kvmmu_plat_signal_pending(void);
bool kvmmu_plat_capable_sys_admin(void);

/*
 * Host address spaces (struct mm_struct, opaque). A VM keeps the mm of the
 * process that created it: mm_grab_current() takes an mm_count reference
 * (mmgrab) on current->mm, or returns NULL when current has no mm.
 */
void *kvmmu_plat_mm_grab_current(void);
void kvmmu_plat_mm_drop(void *mm);			/* mmdrop */
bool kvmmu_plat_mm_get(void *mm);			/* mmget_not_zero */
void kvmmu_plat_mm_put(void *mm);			/* mmput_async: never exit_mmap here */
bool kvmmu_plat_mm_is_current(const void *mm);
void kvmmu_plat_mmap_read_lock(void *mm);
/* mmap_read_lock_killable(): 0, or -EINTR (a fatal signal) without the lock. */
int kvmmu_plat_mmap_read_lock_killable(void *mm);
void kvmmu_plat_mmap_read_unlock(void *mm);

/* Flags of the VMA covering an address (vma_lookup), for kvmmu_plat_vma_flags(). */
enum kvmmu_vma_flags {
	KVMMU_VMA_READ = 1u << 0,
	KVMMU_VMA_WRITE = 1u << 1,
	KVMMU_VMA_IO = 1u << 2,		/* VM_IO */
	KVMMU_VMA_PFNMAP = 1u << 3,	/* VM_PFNMAP */
};

/* GUP flags for kvmmu_plat_gup_one() and kvmmu_plat_fault_one(). */
enum kvmmu_gup_flags {
	KVMMU_GUP_WRITE = 1u << 0,	/* FOLL_WRITE, FAULT_FLAG_WRITE */
	KVMMU_GUP_NOWAIT = 1u << 1,	/* FOLL_NOWAIT: fail (-EBUSY) rather than wait */
	KVMMU_GUP_TRIED = 1u << 2,	/* FAULT_FLAG_TRIED: a retry after the lock was dropped */
};

/*
 * get_user_page_fast_only() on current->mm: 1 and a page reference on
 * success, 0 if the fast path cannot do it. Never sleeps.
 */
int kvmmu_plat_gup_fast_one(uint64_t hva, bool write, uint64_t *pfn);
/*
 * get_user_pages_remote() of one page, FOLL_HWPOISON; the caller holds the
 * mmap lock for read and still does on return (the lock is never dropped:
 * no `locked` argument). 1 and a page reference, or a negative errno
 * (-EHWPOISON, -EFAULT, -EINTR, ...). With KVMMU_GUP_NOWAIT, -EBUSY when
 * the fault would have to wait (I/O, a page lock, a userfaultfd handler:
 * GUP's 0 for FOLL_NOWAIT). Without it, a fault that needs to drop the
 * lock to wait cannot: userfaultfd memory then fails (-EFAULT, and a
 * DEBUG_VM warning), so such memory goes through kvmmu_plat_fault_one().
 */
long kvmmu_plat_gup_one(void *mm, uint64_t hva, unsigned int gup_flags, uint64_t *pfn);
/*
 * One handle_mm_fault() of @hva in the VMA covering it, as GUP's
 * faultin_page() does with a `locked` argument, plus
 * FAULT_FLAG_INTERRUPTIBLE: FAULT_FLAG_ALLOW_RETRY | KILLABLE |
 * INTERRUPTIBLE | REMOTE, WRITE and TRIED from @gup_flags (KVMMU_GUP_WRITE,
 * KVMMU_GUP_TRIED; not NOWAIT). The caller holds the mmap lock for read.
 * A fault that must wait (I/O, a userfaultfd handler) drops the lock and
 * waits killably and interruptibly: then *unlocked is set, the lock is NOT
 * held on return and the VMA may be gone; the caller retakes the lock and
 * looks again (whether a signal ended the wait is signal_pending()'s to
 * say). Otherwise *unlocked is false and the lock is still held.
 * Returns 0 (the page may now be mapped: look it up again) or a negative
 * errno: -EFAULT (no VMA, or it does not allow the access), -EHWPOISON,
 * -ENOMEM. Does not loop: retrying is the caller's.
 */
int kvmmu_plat_fault_one(void *mm, uint64_t hva, unsigned int gup_flags, bool *unlocked);
/* vma_lookup(): KVMMU_VMA_* of the VMA at @hva, or -EFAULT if there is none. */
int kvmmu_plat_vma_flags(void *mm, uint64_t hva);
/*
 * follow_pte() on an IO/PFNMAP VMA: the pfn and writability of the present
 * pte mapping @hva; the caller holds the mmap lock for read. 0, or -errno
 * when no present pte maps @hva (-EINVAL from follow_pte()).
 *
 * No page reference is taken, whatever the pfn is: device memory, RAM
 * outside the kernel's map, PageReserved pages, or pages a driver
 * allocated and remapped (tail pages of a higher-order allocation have a
 * count of 0). Such a pfn stays valid only as long as the pte that maps
 * it, and the caller's mmu notifier (invalidate_range_start) is what tells
 * it when that ends. A count of 0 is never a reason to fail (seed 004).
 */
int kvmmu_plat_follow_pfn(void *mm, uint64_t hva, uint64_t *pfn, bool *writable, unsigned int *cache);
/*
 * follow_pfn()'s *cache: the memory type the pte gives the user mapping,
 * from the architecture's own encoding (x86 PAT cache mode, arm64 MAIR
 * index, ppc64 WIMG/cache-control bits): cacheable, write-combining
 * (x86 WC, arm64 Normal-NC, ppc64 tolerant), or uncached (x86 UC/UC-, and
 * WT/WP; arm64 Device-*; ppc64 non-idempotent).
 */
enum kvmmu_cache_mode {
	KVMMU_CACHE_WB = 0,
	KVMMU_CACHE_WC = 1,
	KVMMU_CACHE_UC = 2,
};
/* fixup_user_fault(); *unlocked: the mmap lock was dropped and retaken. */
int kvmmu_plat_fixup_user_fault(void *mm, uint64_t hva, bool write, bool *unlocked);
/*
 * Log2 of the size of the host mapping of @hva in @mm's page tables now
 * (PMD_SHIFT, PUD_SHIFT; PAGE_SHIFT when nothing larger maps it). A lockless
 * read; only meaningful under the caller's invalidation tracking.
 */
unsigned int kvmmu_plat_host_mapping_shift(void *mm, uint64_t hva);

/*
 * Host pages by pfn. A pfn "has a page" if it is a refcounted page
 * (pfn_valid and not PageReserved). Nothing here says whether the caller
 * holds a reference on it: only pages GUP returned are referenced, and
 * only those may be put or marked (the core remembers which; pfns reached
 * through VM_IO/VM_PFNMAP mappings are never touched through their struct
 * page, seed 004).
 */
bool kvmmu_plat_pfn_has_page(uint64_t pfn);
/*
 * Is @pfn system RAM, i.e. ordinary cacheable memory that may be mapped
 * with the normal (write-back, executable) memory type, as opposed to
 * MMIO? Decided by the architecture's own map of physical memory, not by
 * the struct page: PageReserved RAM, RAM with no struct page and RAM
 * outside the kernel's linear map (mem=, then mapped from /dev/mem) count
 * as RAM where the architecture's map says so.
 *   arm64:  pfn_is_map_memory() (memblock memory that is not NOMAP), the
 *           rule KVM uses for stage-2 memory types (RAM that mem= removed
 *           from memblock is therefore device memory there, as in KVM);
 *   x86:    RAM in the firmware's e820 map (also RAM cut off by mem=) or
 *           in iomem's System RAM (hotplugged memory), unless PAT tracks
 *           it as uncached or write-combining (set_memory_uc/wc RAM);
 *   others: page_is_ram() (iomem System RAM).
 * The shared zero page is RAM. Never sleeps; may be called under a
 * spinning lock. Says nothing about kmap: see kvmmu_plat_pfn_kmappable().
 */
bool kvmmu_plat_pfn_is_ram(uint64_t pfn);
/*
 * Does kvmmu_plat_kmap_pfn() reach @pfn's memory? True when it has a
 * struct page and lies in the kernel's linear map: pfn_valid() alone is not
 * enough (an early memory section is pfn_valid() throughout, also past a
 * mem= cut, which the linear map does not cover), so also arm64
 * pfn_is_map_memory() (memblock memory, not NOMAP), elsewhere page_is_ram()
 * (iomem System RAM, registered from the memory the kernel maps). Says
 * nothing about the memory type: callers that copy through the map also
 * check kvmmu_plat_pfn_is_ram(). Never sleeps; may be called under a
 * spinning lock.
 */
bool kvmmu_plat_pfn_kmappable(uint64_t pfn);
/* put_page(): drops a reference GUP took. Only for pfns GUP returned. */
void kvmmu_plat_pfn_put(uint64_t pfn);
/*
 * SetPageDirty() / mark_page_accessed() of a page GUP returned (the core
 * calls them only for those), if it has a page. Never for pfns from
 * kvmmu_plat_follow_pfn().
 */
void kvmmu_plat_pfn_mark_dirty(uint64_t pfn);
void kvmmu_plat_pfn_mark_accessed(uint64_t pfn);
/*
 * kmap_local_page() of a kmappable pfn's page, and its kunmap_local(). No
 * reference is taken or dropped: the caller keeps the pfn mapped (a GUP
 * reference, or the MMU lock that an invalidation needs) meanwhile.
 */
void *kvmmu_plat_kmap_pfn(uint64_t pfn);
void kvmmu_plat_kunmap(void *va);

/*
 * Long-lived kernel mappings of one page, kept across sleeps and by other
 * threads (the pfn caches): kmap() of a kmappable pfn's page and its
 * kunmap(); memremap(MEMREMAP_WB) of RAM without a usable struct page, and
 * memunmap() (NULL if it cannot be mapped). No reference is taken: the
 * caller stops using the address once the memory may go (mmu notifier).
 * kmap and memremap may sleep.
 */
void *kvmmu_plat_kmap_long(uint64_t pfn);
void kvmmu_plat_kunmap_long(uint64_t pfn);
void *kvmmu_plat_memremap_wb(uint64_t pa, size_t size);
void kvmmu_plat_memunmap(void *va);

/*
 * Device memory (MMIO) accesses from the kernel: ioremap() (uncached,
 * @wc: ioremap_wc()) of [@pa, @pa + @size), iounmap(), and readb/w/l/q and
 * writeb/w/l/q (little-endian accessors with the architecture's ordering:
 * each one access of that size, in program order). ioremap may sleep and
 * returns NULL on failure.
 */
void *kvmmu_plat_ioremap(uint64_t pa, size_t size, bool wc);
void kvmmu_plat_iounmap(void *va);
uint8_t kvmmu_plat_readb(const void *va);
uint16_t kvmmu_plat_readw(const void *va);
uint32_t kvmmu_plat_readl(const void *va);
uint64_t kvmmu_plat_readq(const void *va);
void kvmmu_plat_writeb(uint8_t v, void *va);
void kvmmu_plat_writew(uint16_t v, void *va);
void kvmmu_plat_writel(uint32_t v, void *va);
void kvmmu_plat_writeq(uint64_t v, void *va);

/*
 * Wait queues. @wq points at storage of KVMMU_WAITQ_SIZE bytes;
 * init_waitqueue_head() with a lockdep class per @key.
 * wait_event_killable(@wq, @cond(@arg)): 0 once @cond holds, or -ERESTARTSYS
 * on a fatal signal. @cond is evaluated with the task not running: it may
 * take spinning locks, never sleep. wake_up_all_sleepers(): if
 * wq_has_sleeper() (a full barrier, then whether anyone waits), wake_up_all();
 * a waker that changed the condition before the call loses no waiter and
 * takes no lock when nobody waits.
 */
void kvmmu_plat_waitq_init(void *wq, const char *name, void *key);
int kvmmu_plat_wait_event_killable(void *wq, bool (*cond)(void *arg), void *arg);
void kvmmu_plat_wake_up_all_sleepers(void *wq);

/*
 * copy_{to,from}_user(), clear_user(): the number of bytes NOT done.
 * copy_from_user() zeroes what it could not copy.
 */
size_t kvmmu_plat_copy_to_user(uint64_t uaddr, const void *src, size_t n);
size_t kvmmu_plat_copy_from_user(void *dst, uint64_t uaddr, size_t n);
size_t kvmmu_plat_clear_user(uint64_t uaddr, size_t n);

/* Tracepoints (kernel/trace.c). */
void kvmmu_plat_trace_fault(const void *vm, uint64_t gpa, unsigned int access, int ret,
			    unsigned int level, uint64_t pfn);
void kvmmu_plat_trace_invalidate_start(const void *vm, uint64_t start, uint64_t end,
				       unsigned int in_flight);
void kvmmu_plat_trace_invalidate_end(const void *vm, uint64_t start, uint64_t end,
				     uint64_t seq);
void kvmmu_plat_trace_retry(const void *vm, uint64_t gpa, uint64_t seq);
void kvmmu_plat_trace_dirty_log(const void *vm, unsigned int slot, uint64_t dirty_pages);

/* Diagnostics. kvmmu_plat_bug() does not return (BUG()). */
void kvmmu_plat_bug(const char *file, int line, const char *what);
void kvmmu_plat_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

enum kvmmu_log_level {
	KVMMU_LOG_ERR = 3,
	KVMMU_LOG_WARNING = 4,
	KVMMU_LOG_INFO = 6,
	KVMMU_LOG_DEBUG = 7,
};

#ifdef __cplusplus
}
#endif

#endif /* KVMMU_PLATFORM_H */
