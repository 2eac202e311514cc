// SPDX-License-Identifier: GPL-2.0
/*
 * VM file descriptors: one kvmmu VM, fed by an mmu_notifier on the address
 * space of the process that created it. Every notifier callback and ioctl
 * goes straight to a hook of include/kvmmu/hooks.h.
 */
#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <kvmmu/hooks.h>
#include <uapi/linux/kvmmu.h>

#include "glue.h"
#include "notifier.h"

struct kvmmu_vmfd {
	struct kvmmu_notifier kn;
	struct mm_struct *mm;	/* pinned (mm_count) by the registered notifier */
	struct kvmmu_vm *vm;
	struct dentry *debugfs;	/* kvmmu/vm-<pid>-<n> */
};

static_assert(KVMMU_MEM_LOG_DIRTY_PAGES == KVMMU_MEMSLOT_LOG_DIRTY_PAGES);
static_assert(KVMMU_MEM_READONLY == KVMMU_MEMSLOT_READONLY);
static_assert(KVMMU_MAX_MEMSLOTS == KVMMU_MEMSLOT_MAX);
static_assert(KVMMU_ACCESS_WRITE == KVMMU_FAULT_WRITE);
static_assert(KVMMU_PROT_READ == KVMMU_LEAF_PROT_READ && KVMMU_PROT_WRITE == KVMMU_LEAF_PROT_WRITE &&
	      KVMMU_PROT_EXEC == KVMMU_LEAF_PROT_EXEC);
static_assert(KVMMU_MEMTYPE_NORMAL_WB == KVMMU_LEAF_MT_NORMAL_WB &&
	      KVMMU_MEMTYPE_NORMAL_NC == KVMMU_LEAF_MT_NORMAL_NC &&
	      KVMMU_MEMTYPE_DEVICE == KVMMU_LEAF_MT_DEVICE);

static int kvmmu_vm_fill_stats(struct kvmmu_vm *vm, struct kvmmu_vm_stats *st)
{
	struct kvmmu_vm_counters c;
	struct kvmmu_vm_mmu_stats m;
	int r;

	r = kvmmu_vm_get_counters(vm, &c);
	if (!r)
		r = kvmmu_vm_get_mmu_stats(vm, &m);
	if (r)
		return r;
	memset(st, 0, sizeof(*st));
	st->invalidate_range_start = c.invalidate_range_start;
	st->invalidate_range_end = c.invalidate_range_end;
	st->clear_flush_young = c.clear_flush_young;
	st->clear_young = c.clear_young;
	st->test_young = c.test_young;
	st->change_pte = c.change_pte;
	st->release = c.release;
	st->faults = m.faults;
	st->fault_retries = m.fault_retries;
	memcpy(st->leaves, m.leaves, sizeof(st->leaves));
	st->table_pages = m.table_pages;
	st->tlb_flushes = m.tlb_flushes;
	st->pages_unmapped = m.pages_unmapped;
	st->dirty_faults = m.dirty_faults;
	return 0;
}

static long kvmmu_vm_get_stats(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_vm_stats st;
	int r = kvmmu_vm_fill_stats(f->vm, &st);

	if (r)
		return r;
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static bool kvmmu_zero(const __u64 *v, size_t n)
{
	while (n--)
		if (v[n])
			return false;
	return true;
}

static long kvmmu_vm_get_info(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_vm_info info;
	int bits;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.version || info.flags || info.pad ||
	    !kvmmu_zero(info.reserved, ARRAY_SIZE(info.reserved)))
		return -EINVAL;
	bits = kvmmu_vm_gpa_bits(f->vm);
	if (bits < 0)
		return bits;
	memset(&info, 0, sizeof(info));
	info.version = KVMMU_VM_INFO_VERSION;
	info.gpa_bits = bits;
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long kvmmu_vm_set_region(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_userspace_memory_region u;
	struct kvmmu_memory_region r;

	if (copy_from_user(&u, argp, sizeof(u)))
		return -EFAULT;
	if (!kvmmu_zero(u.reserved, ARRAY_SIZE(u.reserved)))
		return -EINVAL;
	r.slot = u.slot;
	r.flags = u.flags;
	r.guest_phys_addr = u.guest_phys_addr;
	r.memory_size = u.memory_size;
	r.userspace_addr = u.userspace_addr;
	return kvmmu_vm_set_memory_region(f->vm, &r);
}

static long kvmmu_vm_gpa_access(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_gpa_access a;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.pad || !kvmmu_zero(a.reserved, ARRAY_SIZE(a.reserved)) ||
	    (a.flags & ~KVMMU_ACCESS_FLAGS_VALID) || !a.len || a.len > KVMMU_ACCESS_MAX_LEN)
		return -EINVAL;
	return kvmmu_vm_access(f->vm, a.gpa, a.len, a.buf, a.flags & KVMMU_ACCESS_WRITE);
}

static long kvmmu_vm_translate_ioctl(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_translation t;
	struct kvmmu_leaf_info l;
	int r;

	if (copy_from_user(&t, argp, sizeof(t)))
		return -EFAULT;
	if (t.flags || t.pad || !kvmmu_zero(t.reserved, ARRAY_SIZE(t.reserved)))
		return -EINVAL;
	r = kvmmu_vm_translate(f->vm, t.gpa, &l);
	if (r)
		return r;
	t.flags = (l.young ? KVMMU_TRANSLATE_YOUNG : 0) | (l.dirty ? KVMMU_TRANSLATE_DIRTY : 0);
	t.mapped = l.mapped;
	t.level = l.level;
	t.prot = l.prot;
	t.size = l.size;
	t.memtype = l.memtype;
	/* Physical addresses are for the privileged only, as in pagemap. */
	t.pfn = capable(CAP_SYS_ADMIN) ? l.pfn : 0;
	return copy_to_user(argp, &t, sizeof(t)) ? -EFAULT : 0;
}

static long kvmmu_vm_dirty_log(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_dirty_log d;
	s64 r;

	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;
	if (d.pad || !kvmmu_zero(d.reserved, ARRAY_SIZE(d.reserved)))
		return -EINVAL;
	if (d.slot >= KVMMU_MAX_MEMSLOTS)
		return -EINVAL;
	r = kvmmu_vm_get_dirty_log(f->vm, d.slot, d.dirty_bitmap);
	return r < 0 ? r : 0;
}

static long kvmmu_vm_pre_fault_ioctl(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_pre_fault p;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;
	if (p.pad || !kvmmu_zero(p.reserved, ARRAY_SIZE(p.reserved)) ||
	    (p.flags & ~KVMMU_ACCESS_FLAGS_VALID) || !p.size || p.size > KVMMU_PRE_FAULT_MAX)
		return -EINVAL;
	return kvmmu_vm_pre_fault(f->vm, p.gpa, p.size, p.flags & KVMMU_ACCESS_WRITE);
}

/* pfncache/hooks.cpp spells the uapi's flag values itself. */
static_assert(KVMMU_GPC_BY_HVA == 1 && KVMMU_GPC_BASELINE == 2 && KVMMU_GPC_REFRESH_FORCE == 1);

static long kvmmu_vm_gpc_create_ioctl(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_gpc_create c;
	u64 cookie;
	int r;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (c.pad || c.id || !kvmmu_zero(c.reserved, ARRAY_SIZE(c.reserved)))
		return -EINVAL;
	r = kvmmu_vm_gpc_create(f->vm, c.addr, c.len, c.flags, &c.id, &cookie);
	if (r)
		return r;
	if (copy_to_user(argp, &c, sizeof(c))) {
		/* Nobody was told the id: the cache goes again. */
		kvmmu_vm_gpc_abandon(f->vm, c.id, cookie);
		return -EFAULT;
	}
	return 0;
}

static long kvmmu_vm_gpc_op_ioctl(struct kvmmu_vmfd *f, void __user *argp, bool refresh)
{
	struct kvmmu_gpc_op o;

	if (copy_from_user(&o, argp, sizeof(o)))
		return -EFAULT;
	if (!kvmmu_zero(o.reserved, ARRAY_SIZE(o.reserved)) || (!refresh && o.flags))
		return -EINVAL;
	if (refresh)
		return kvmmu_vm_gpc_refresh(f->vm, o.id, o.flags);
	return kvmmu_vm_gpc_destroy(f->vm, o.id);
}

static long kvmmu_vm_gpc_access_ioctl(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_gpc_access a;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (!kvmmu_zero(a.reserved, ARRAY_SIZE(a.reserved)) || (a.flags & ~KVMMU_ACCESS_FLAGS_VALID))
		return -EINVAL;
	return kvmmu_vm_gpc_access(f->vm, a.id, a.offset, a.len, a.buf, a.flags & KVMMU_ACCESS_WRITE);
}

static long kvmmu_vm_gpc_stats_ioctl(struct kvmmu_vmfd *f, void __user *argp)
{
	struct kvmmu_gpc_stats st;
	struct kvmmu_gpc_counts c;
	int r;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	/* The counts are output only: what they held on input is ignored. */
	if (st.pad || !kvmmu_zero(st.reserved, ARRAY_SIZE(st.reserved)))
		return -EINVAL;
	r = kvmmu_vm_gpc_counts(f->vm, st.id, &c);
	if (r)
		return r;
	st.refreshes = c.refreshes;
	st.retries = c.retries;
	st.waits = c.waits;
	st.invalidations = c.invalidations;
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
	case KVMMU_GET_VM_INFO:
		return kvmmu_vm_get_info(f, (void __user *)arg);
	case KVMMU_SET_USER_MEMORY_REGION:
		return kvmmu_vm_set_region(f, (void __user *)arg);
	case KVMMU_GPA_ACCESS:
		return kvmmu_vm_gpa_access(f, (void __user *)arg);
	case KVMMU_TRANSLATE:
		return kvmmu_vm_translate_ioctl(f, (void __user *)arg);
	case KVMMU_GET_DIRTY_LOG:
		return kvmmu_vm_dirty_log(f, (void __user *)arg);
	case KVMMU_PRE_FAULT:
		return kvmmu_vm_pre_fault_ioctl(f, (void __user *)arg);
	case KVMMU_GPC_CREATE:
		return kvmmu_vm_gpc_create_ioctl(f, (void __user *)arg);
	case KVMMU_GPC_REFRESH:
		return kvmmu_vm_gpc_op_ioctl(f, (void __user *)arg, true);
	case KVMMU_GPC_DESTROY:
		return kvmmu_vm_gpc_op_ioctl(f, (void __user *)arg, false);
	case KVMMU_GPC_ACCESS:
		return kvmmu_vm_gpc_access_ioctl(f, (void __user *)arg);
	case KVMMU_GPC_GET_STATS:
		return kvmmu_vm_gpc_stats_ioctl(f, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int kvmmu_vm_fd_release(struct inode *inode, struct file *file)
{
	struct kvmmu_vmfd *f = file->private_data;

	debugfs_remove_recursive(f->debugfs);
	kvmmu_notifier_unregister(&f->kn);
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

static int kvmmu_vm_stats_show(struct seq_file *m, void *unused)
{
	struct kvmmu_vm_stats st;
	int r = kvmmu_vm_fill_stats(m->private, &st);

	if (r)
		return r;
	seq_printf(m, "faults %llu\nfault_retries %llu\ndirty_faults %llu\n"
		   "invalidate_range_start %llu\ninvalidate_range_end %llu\n"
		   "pages_unmapped %llu\nleaves_level0 %llu\nleaves_level1 %llu\n"
		   "leaves_level2 %llu\ntable_pages %llu\ntlb_flushes %llu\n",
		   st.faults, st.fault_retries, st.dirty_faults, st.invalidate_range_start,
		   st.invalidate_range_end, st.pages_unmapped, st.leaves[0], st.leaves[1],
		   st.leaves[2], st.table_pages, st.tlb_flushes);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kvmmu_vm_stats);

static atomic_t kvmmu_vm_ids = ATOMIC_INIT(0);

int kvmmu_vmfd_create(u32 flags)
{
	char name[48];
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
	r = kvmmu_notifier_register(&f->kn, f->vm, f->mm);
	if (r)
		goto err_destroy;
	/* Per-VM statistics; debugfs failures are not fatal. */
	snprintf(name, sizeof(name), "vm-%d-%d", task_pid_nr(current),
		 atomic_inc_return(&kvmmu_vm_ids));
	f->debugfs = debugfs_create_dir(name, kvmmu_debugfs_root());
	debugfs_create_file("stats", 0400, f->debugfs, f->vm, &kvmmu_vm_stats_fops);
	kvmmu_debugfs_vm_init(f->debugfs, f->vm);
	r = anon_inode_getfd("kvmmu-vm", &kvmmu_vm_fops, f, O_RDWR | O_CLOEXEC);
	if (r < 0)
		goto err_debugfs;
	return r;

err_debugfs:
	debugfs_remove_recursive(f->debugfs);
	kvmmu_notifier_unregister(&f->kn);
err_destroy:
	kvmmu_vm_destroy(f->vm);
err_free:
	kfree(f);
	return r;
}
