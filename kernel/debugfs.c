// SPDX-License-Identifier: GPL-2.0
/* /sys/kernel/debug/kvmmu: module-wide statistics. */
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

void kvmmu_debugfs_exit(void)
{
	debugfs_remove_recursive(kvmmu_debugfs_dir);
}
