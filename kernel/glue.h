/* SPDX-License-Identifier: GPL-2.0 */
/* Internal interfaces between kvmmu's C glue files. */
#ifndef KVMMU_KERNEL_GLUE_H
#define KVMMU_KERNEL_GLUE_H

#include <linux/types.h>

int kvmmu_vmfd_create(u32 flags);

int kvmmu_chardev_init(int group);
void kvmmu_chardev_exit(void);

/*
 * kvmmu as KVM/arm64's stage-2 MMU (kernel/kvm_arm64.c), when built
 * against a kernel carrying kvm/arm64/patches.
 */
#ifdef KVMMU_KVM_ARM64
int kvmmu_kvm_register(void);
void kvmmu_kvm_unregister(void);
#else
static inline int kvmmu_kvm_register(void) { return 0; }
static inline void kvmmu_kvm_unregister(void) {}
#endif

void kvmmu_debugfs_init(void);
void kvmmu_debugfs_exit(void);
struct dentry *kvmmu_debugfs_root(void);

struct kvmmu_vm;
/* The per-VM debugfs files besides "stats", in @dir (kvmmu/vm-<pid>-<n>). */
void kvmmu_debugfs_vm_init(struct dentry *dir, struct kvmmu_vm *vm);

/*
 * C++ entry points for the glue only (mmu/hooks.cpp), not hooks of
 * include/kvmmu/hooks.h. kvmmu_vm_set_legacy_retry(): @legacy selects the
 * invalidation tracker's old retry rule (every invalidation of the mm
 * counts) instead of the range-exact one, as the baseline of benchmarks
 * (issue 10, defect 3); 0, or -EINVAL for a NULL @vm.
 */
int kvmmu_vm_set_legacy_retry(struct kvmmu_vm *vm, bool legacy);

/* The pfn-cache ioctls: pfncache/front.h. */
#include "../pfncache/front.h"

#endif
