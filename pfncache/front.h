/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The /dev/kvmmu front end of the pfn caches (pfncache/hooks.cpp): caches
 * by per-VM id, with the checks and errors of include/uapi/linux/kvmmu.h
 * (kernel/vmfd.c checks only padding and reserved fields). @flags are the
 * uapi's. Not hooks for a KVM core: those are kvmmu_gpc_* in hooks.h.
 * One declaration for the C glue, the C++ definitions and the host tests.
 */
#ifndef KVMMU_PFNCACHE_FRONT_H
#define KVMMU_PFNCACHE_FRONT_H

#include <kvmmu/hooks.h>

#ifdef __cplusplus
extern "C" {
#endif

/* @cookie names the new cache for kvmmu_vm_gpc_abandon() (never reused). */
int kvmmu_vm_gpc_create(struct kvmmu_vm *vm, uint64_t addr, uint64_t len, uint32_t flags, uint32_t *id,
			uint64_t *cookie);
/* Undoes the create that gave @cookie, if @id still holds that cache. */
int kvmmu_vm_gpc_abandon(struct kvmmu_vm *vm, uint32_t id, uint64_t cookie);
int kvmmu_vm_gpc_refresh(struct kvmmu_vm *vm, uint32_t id, uint32_t flags);
int kvmmu_vm_gpc_access(struct kvmmu_vm *vm, uint32_t id, uint64_t offset, uint64_t len, uint64_t ubuf,
			bool write);
int kvmmu_vm_gpc_destroy(struct kvmmu_vm *vm, uint32_t id);
int kvmmu_vm_gpc_counts(struct kvmmu_vm *vm, uint32_t id, struct kvmmu_gpc_counts *out);

#ifdef __cplusplus
}
#endif

#endif
