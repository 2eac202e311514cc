// SPDX-License-Identifier: GPL-2.0
/*
 * A VM's mmu_notifier: every callback goes straight to the hook of
 * include/kvmmu/hooks.h with the same name. Used by VM file descriptors and
 * by the KUnit suites that drive VMs over a real address space.
 */
#include <linux/mmu_notifier.h>

#include "notifier.h"

static struct kvmmu_notifier *to_kn(struct mmu_notifier *mn)
{
	return container_of(mn, struct kvmmu_notifier, mn);
}

static int kvmmu_mn_invalidate_range_start(struct mmu_notifier *mn,
					   const struct mmu_notifier_range *range)
{
	/*
	 * Never -EAGAIN: on 6.1 a subscriber with invalidate_range_end that
	 * fails a start trips a WARN and still gets the end. The hook does
	 * not sleep, so non-blockable ranges are handled like the others.
	 */
	kvmmu_vm_invalidate_range_start(to_kn(mn)->vm, range->start, range->end,
					mmu_notifier_range_blockable(range));
	return 0;
}

static void kvmmu_mn_invalidate_range_end(struct mmu_notifier *mn,
					  const struct mmu_notifier_range *range)
{
	kvmmu_vm_invalidate_range_end(to_kn(mn)->vm, range->start, range->end);
}

static int kvmmu_mn_clear_flush_young(struct mmu_notifier *mn, struct mm_struct *mm,
				      unsigned long start, unsigned long end)
{
	return max(kvmmu_vm_clear_flush_young(to_kn(mn)->vm, start, end), 0);
}

static int kvmmu_mn_clear_young(struct mmu_notifier *mn, struct mm_struct *mm,
				unsigned long start, unsigned long end)
{
	return max(kvmmu_vm_clear_young(to_kn(mn)->vm, start, end), 0);
}

static int kvmmu_mn_test_young(struct mmu_notifier *mn, struct mm_struct *mm,
			       unsigned long address)
{
	return max(kvmmu_vm_test_young(to_kn(mn)->vm, address), 0);
}

static void kvmmu_mn_change_pte(struct mmu_notifier *mn, struct mm_struct *mm,
				unsigned long address, pte_t pte)
{
	kvmmu_vm_change_pte(to_kn(mn)->vm, address);
}

static void kvmmu_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	kvmmu_vm_release(to_kn(mn)->vm);
}

static const struct mmu_notifier_ops kvmmu_mn_ops = {
	.invalidate_range_start = kvmmu_mn_invalidate_range_start,
	.invalidate_range_end = kvmmu_mn_invalidate_range_end,
	.clear_flush_young = kvmmu_mn_clear_flush_young,
	.clear_young = kvmmu_mn_clear_young,
	.test_young = kvmmu_mn_test_young,
	.change_pte = kvmmu_mn_change_pte,
	.release = kvmmu_mn_release,
};

int kvmmu_notifier_register(struct kvmmu_notifier *n, struct kvmmu_vm *vm, struct mm_struct *mm)
{
	n->vm = vm;
	n->mm = mm;
	n->mn.ops = &kvmmu_mn_ops;
	return mmu_notifier_register(&n->mn, mm);
}

void kvmmu_notifier_unregister(struct kvmmu_notifier *n)
{
	/* Waits for running callbacks; calls ->release if the mm is alive. */
	mmu_notifier_unregister(&n->mn, n->mm);
}
