// SPDX-License-Identifier: GPL-2.0
/*
 * Not linked: compiled to assembly at build time to generate
 * kvmmu_layout.h, which tells the C++ core the sizes and alignments of the
 * kernel structures it embeds and the kernel's constants, taken from this
 * kernel's own headers and configuration (like asm-offsets).
 */
#include <linux/kbuild.h>
#include <linux/errno.h>
#include <linux/lockdep.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/wait.h>

#define SIZE_ALIGN(name, type)				\
	DEFINE(name##_SIZE, sizeof(type));		\
	DEFINE(name##_ALIGN, __alignof__(type))

void kvmmu_layout(void);
void kvmmu_layout(void)
{
	SIZE_ALIGN(KVMMU_SPINLOCK, spinlock_t);
	SIZE_ALIGN(KVMMU_RWLOCK, rwlock_t);
	SIZE_ALIGN(KVMMU_MUTEX, struct mutex);
	SIZE_ALIGN(KVMMU_LOCK_CLASS_KEY, struct lock_class_key);
	SIZE_ALIGN(KVMMU_SRCU, struct srcu_struct);
	SIZE_ALIGN(KVMMU_WAITQ, wait_queue_head_t);
	BLANK();
	DEFINE(KVMMU_PAGE_SHIFT, PAGE_SHIFT);
	DEFINE(KVMMU_KMALLOC_MINALIGN, ARCH_KMALLOC_MINALIGN);
	BLANK();
	DEFINE(KVMMU_EPERM, EPERM);
	DEFINE(KVMMU_ENOENT, ENOENT);
	DEFINE(KVMMU_EINTR, EINTR);
	DEFINE(KVMMU_EIO, EIO);
	DEFINE(KVMMU_EAGAIN, EAGAIN);
	DEFINE(KVMMU_ENOMEM, ENOMEM);
	DEFINE(KVMMU_EFAULT, EFAULT);
	DEFINE(KVMMU_EBUSY, EBUSY);
	DEFINE(KVMMU_EEXIST, EEXIST);
	DEFINE(KVMMU_ENODEV, ENODEV);
	DEFINE(KVMMU_EINVAL, EINVAL);
	DEFINE(KVMMU_ENOSPC, ENOSPC);
	DEFINE(KVMMU_ERANGE, ERANGE);
	DEFINE(KVMMU_ENOTTY, ENOTTY);
	DEFINE(KVMMU_E2BIG, E2BIG);
	DEFINE(KVMMU_EOPNOTSUPP, EOPNOTSUPP);
	DEFINE(KVMMU_EHWPOISON, EHWPOISON);
	DEFINE(KVMMU_ERESTARTSYS, ERESTARTSYS);
}
