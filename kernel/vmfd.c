// SPDX-License-Identifier: GPL-2.0
/*
 * VM file descriptors: one kvmmu VM, fed by an mmu_notifier on the address
 * space of the process that created it. Every notifier callback and ioctl
 * goes straight to a hook of include/kvmmu/hooks.h.
 */
#include <linux/anon_inodes.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <kvmmu/hooks.h>
#include <uapi/linux/kvmmu.h>

#include "glue.h"

struct kvmmu_vmfd {
	struct mmu_notifier mn;
	struct mm_struct *mm;	/* pinned (mm_count) by the registered notifier */
	struct kvmmu_vm *vm;
};

static struct kvmmu_vmfd *to_vmfd(struct mmu_notifier *mn)
{
	return container_of(mn, struct kvmmu_vmfd, mn);
}

static int kvmmu_mn_invalidate_range_start(struct mmu_notifier *mn,
					   const struct mmu_notifier_range *range)
{
	bool blockable = mmu_notifier_range_blockable(range);
	int r = kvmmu_vm_invalidate_range_start(to_vmfd(mn)->vm, range->start,
						range->end, blockable);

	/* The mm accepts only -EAGAIN, and only from non-blockable ranges. */
	return (r == -EAGAIN && !blockable) ? r : 0;
}

static void kvmmu_mn_invalidate_range_end(struct mmu_notifier *mn,
					  const struct mmu_notifier_range *range)
{
	kvmmu_vm_invalidate_range_end(to_vmfd(mn)->vm, range->start, range->end);
}

static int kvmmu_mn_clear_flush_young(struct mmu_notifier *mn, struct mm_struct *mm,
				      unsigned long start, unsigned long end)
{
	return max(kvmmu_vm_clear_flush_young(to_vmfd(mn)->vm, start, end), 0);
}

static int kvmmu_mn_clear_young(struct mmu_notifier *mn, struct mm_struct *mm,
				unsigned long start, unsigned long end)
{
	return max(kvmmu_vm_clear_young(to_vmfd(mn)->vm, start, end), 0);
}

static int kvmmu_mn_test_young(struct mmu_notifier *mn, struct mm_struct *mm,
			       unsigned long address)
{
	return max(kvmmu_vm_test_young(to_vmfd(mn)->vm, address), 0);
}

static void kvmmu_mn_change_pte(struct mmu_notifier *mn, struct mm_struct *mm,
				unsigned long address, pte_t pte)
{
	kvmmu_vm_change_pte(to_vmfd(mn)->vm, address);
}

static void kvmmu_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	kvmmu_vm_release(to_vmfd(mn)->vm);
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

static long kvmmu_vm_get_stats(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_vm_counters c;
	struct kvmmu_vm_stats st;
	int r;

	r = kvmmu_vm_get_counters(f->vm, &c);
	if (r)
		return r;
	memset(&st, 0, sizeof(st));
	st.invalidate_range_start = c.invalidate_range_start;
	st.invalidate_range_end = c.invalidate_range_end;
	st.clear_flush_young = c.clear_flush_young;
	st.clear_young = c.clear_young;
	st.test_young = c.test_young;
	st.change_pte = c.change_pte;
	st.release = c.release;
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static long kvmmu_vm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kvmmu_vmfd *f = file->private_data;

	/* A VM belongs to the address space that created it. */
	if (current->mm != f->mm)
		return -EIO;

	switch (cmd) {
	case KVMMU_GET_STATS:
		return kvmmu_vm_get_stats(f, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int kvmmu_vm_fd_release(struct inode *inode, struct file *file)
{
	struct kvmmu_vmfd *f = file->private_data;

	/* Waits for running callbacks; calls ->release if the mm is alive. */
	mmu_notifier_unregister(&f->mn, f->mm);
	kvmmu_vm_destroy(f->vm);
	kfree(f);
	return 0;
}

static const struct file_operations kvmmu_vm_fops = {
	.owner = THIS_MODULE,
	.release = kvmmu_vm_fd_release,
	.unlocked_ioctl = kvmmu_vm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

int kvmmu_vmfd_create(u32 flags)
{
	struct kvmmu_vmfd *f;
	int r;

	if (!current->mm)
		return -EINVAL;
	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	r = kvmmu_vm_create(flags, &f->vm);
	if (r)
		goto err_free;
	f->mm = current->mm;
	f->mn.ops = &kvmmu_mn_ops;
	r = mmu_notifier_register(&f->mn, f->mm);
	if (r)
		goto err_destroy;
	r = anon_inode_getfd("kvmmu-vm", &kvmmu_vm_fops, f, O_RDWR | O_CLOEXEC);
	if (r < 0)
		goto err_unregister;
	return r;

err_unregister:
	mmu_notifier_unregister(&f->mn, f->mm);
err_destroy:
	kvmmu_vm_destroy(f->vm);
err_free:
	kfree(f);
	return r;
}
