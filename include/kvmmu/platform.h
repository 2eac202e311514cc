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

/*
 * Pages: 2^order contiguous, naturally aligned pages from the page
 * allocator, addressed through the kernel's linear map. A page's reference
 * count starts at 1 and must be 1 again when the pages are freed.
 */
void *kvmmu_plat_alloc_pages(unsigned int order, unsigned int gfp);
void kvmmu_plat_free_pages(void *va, unsigned int order);
void kvmmu_plat_page_ref_add(void *va, int n);
int kvmmu_plat_page_ref_sub_return(void *va, int n);
void kvmmu_plat_page_ref_set(void *va, int count);
int kvmmu_plat_page_refs(const void *va);
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
void kvmmu_plat_synchronize_srcu(void *ssp);

/* Is [hva, hva + size) a valid range of user addresses (access_ok)? */
bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size);

/* Scheduling context checks. */
void kvmmu_plat_might_sleep(const char *file, int line);

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
