// SPDX-License-Identifier: GPL-2.0
/* /sys/kernel/debug/kvmmu: module-wide statistics, per-VM knobs. */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include <kvmmu/hooks.h>

#include "glue.h"

static struct dentry *kvmmu_debugfs_dir;

static int kvmmu_stats_show(struct seq_file *m, void *unused)
{
	struct kvmmu_module_stats s;
	int r = kvmmu_get_module_stats(&s);

	if (r)
		return r;
	seq_printf(m, "vms_created %llu\nvms_live %llu\n", s.vms_created, s.vms_live);
	/* VMs of a KVM core (docs/kvm.md); totals of those destroyed. */
	seq_printf(m, "core_vms_created %llu\ncore_vms_live %llu\ncore_faults %llu\n"
		   "core_dirty_faults %llu\ncore_invalidations %llu\ncore_pages_unmapped %llu\n"
		   "core_tlb_flushes %llu\ncore_cache_maintenance %llu\n",
		   s.core_vms_created, s.core_vms_live, s.core_faults, s.core_dirty_faults,
		   s.core_invalidations, s.core_pages_unmapped, s.core_tlb_flushes,
		   s.core_cache_maintenance);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kvmmu_stats);

void kvmmu_debugfs_init(void)
{
	/* debugfs failures are not fatal and need no checking. */
	kvmmu_debugfs_dir = debugfs_create_dir("kvmmu", NULL);
	debugfs_create_file("stats", 0400, kvmmu_debugfs_dir, NULL, &kvmmu_stats_fops);
}

struct dentry *kvmmu_debugfs_root(void)
{
	return kvmmu_debugfs_dir;
}

/*
 * kvmmu/vm-<pid>-<n>/legacy_retry (root, write-only): 1 makes the VM's
 * faults retry by the invalidation tracker's legacy rule, 0 (the default)
 * by the range-exact one; anything else is -EINVAL. For benchmarks only
 * (make bench: fault_perf_test --perf measures both in the same run).
 */
static int kvmmu_legacy_retry_set(void *data, u64 val)
{
	if (val > 1)
		return -EINVAL;
	return kvmmu_vm_set_legacy_retry(data, val);
}
DEFINE_DEBUGFS_ATTRIBUTE(kvmmu_legacy_retry_fops, NULL, kvmmu_legacy_retry_set, "%llu\n");

void kvmmu_debugfs_vm_init(struct dentry *dir, struct kvmmu_vm *vm)
{
	/* Removed (and waited for) before the VM is destroyed. */
	debugfs_create_file_unsafe("legacy_retry", 0200, dir, vm, &kvmmu_legacy_retry_fops);
}

void kvmmu_debugfs_exit(void)
{
	debugfs_remove_recursive(kvmmu_debugfs_dir);
}
