/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host (userspace) counterpart of the kvmmu_layout.h that Kbuild generates
 * from kernel/layout.c: the same macros, describing host/platform.cpp's lock
 * objects and this C library's errno values. The lock sizes are upper
 * bounds; host/platform.cpp static_asserts that its locks fit.
 */
#ifndef KVMMU_LAYOUT_H
#define KVMMU_LAYOUT_H

#include <errno.h>

#define KVMMU_SPINLOCK_SIZE 64
#define KVMMU_SPINLOCK_ALIGN 8
#define KVMMU_RWLOCK_SIZE 72
#define KVMMU_RWLOCK_ALIGN 8
#define KVMMU_MUTEX_SIZE 64
#define KVMMU_MUTEX_ALIGN 8
/* As in a kernel without lockdep: the host keeps no lock classes. */
#define KVMMU_LOCK_CLASS_KEY_SIZE 0
#define KVMMU_LOCK_CLASS_KEY_ALIGN 1
#define KVMMU_SRCU_SIZE 64
#define KVMMU_SRCU_ALIGN 8
#define KVMMU_WAITQ_SIZE 160
#define KVMMU_WAITQ_ALIGN 8

#define KVMMU_PAGE_SHIFT 12
/* malloc()'s alignment (alignof(max_align_t)) on the supported hosts. */
#define KVMMU_KMALLOC_MINALIGN 16

#define KVMMU_EPERM EPERM
#define KVMMU_ENOENT ENOENT
#define KVMMU_EINTR EINTR
#define KVMMU_EIO EIO
#define KVMMU_EAGAIN EAGAIN
#define KVMMU_ENOMEM ENOMEM
#define KVMMU_EFAULT EFAULT
#define KVMMU_EBUSY EBUSY
#define KVMMU_EEXIST EEXIST
#define KVMMU_ENODEV ENODEV
#define KVMMU_EINVAL EINVAL
#define KVMMU_ENOSPC ENOSPC
#define KVMMU_ERANGE ERANGE
#define KVMMU_ENOTTY ENOTTY
#define KVMMU_E2BIG E2BIG
#define KVMMU_EOPNOTSUPP EOPNOTSUPP
#define KVMMU_EHWPOISON EHWPOISON
// Kernel-internal: never reaches userspace, so libc has no name for it.
#define KVMMU_ERESTARTSYS 512

#endif
