/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KVMMU_KERNEL_NOTIFIER_H
#define KVMMU_KERNEL_NOTIFIER_H

#include <linux/mmu_notifier.h>

#include <kvmmu/hooks.h>

struct kvmmu_notifier {
	struct mmu_notifier mn;
	struct mm_struct *mm;	/* mm_count held by the registration */
	struct kvmmu_vm *vm;
};

/* Feeds @mm's notifier callbacks to @vm's hooks. Process context. */
int kvmmu_notifier_register(struct kvmmu_notifier *n, struct kvmmu_vm *vm, struct mm_struct *mm);
void kvmmu_notifier_unregister(struct kvmmu_notifier *n);

#endif
