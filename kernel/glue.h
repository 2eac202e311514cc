/* SPDX-License-Identifier: GPL-2.0 */
/* Internal interfaces between kvmmu's C glue files. */
#ifndef KVMMU_KERNEL_GLUE_H
#define KVMMU_KERNEL_GLUE_H

#include <linux/types.h>

int kvmmu_vmfd_create(u32 flags);

int kvmmu_chardev_init(int group);
void kvmmu_chardev_exit(void);

void kvmmu_debugfs_init(void);
void kvmmu_debugfs_exit(void);
struct dentry *kvmmu_debugfs_root(void);

#endif
