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

#ifdef __cplusplus
}
#endif

#endif /* KVMMU_HOST_H */
