/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmmu VMM ABI: ioctls on /dev/kvmmu and on VM file descriptors.
 *
 * Rules for every ioctl: unknown ioctl numbers fail with ENOTTY; unknown
 * flags and nonzero padding/reserved fields fail with EINVAL; unreadable or
 * unwritable argument memory fails with EFAULT. A failing ioctl changes no
 * state. All structures have fixed sizes and explicit padding.
 */
#ifndef _UAPI_LINUX_KVMMU_H
#define _UAPI_LINUX_KVMMU_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVMMU_API_VERSION 1

#define KVMMU_IO 0xE4

/*
 * /dev/kvmmu ioctls
 */

/* Returns KVMMU_API_VERSION. The argument must be 0. */
#define KVMMU_GET_API_VERSION	_IO(KVMMU_IO, 0x00)

/* No VM flags are defined yet. */
#define KVMMU_VM_FLAGS_VALID	0u

struct kvmmu_create_vm {
	__u32 flags;		/* KVMMU_VM_* flags; unknown bits: EINVAL */
	__u32 pad;		/* must be 0 */
	__u64 reserved[3];	/* must be 0 */
};

/*
 * Creates a VM bound to the calling process's address space and returns a
 * VM file descriptor (O_RDWR | O_CLOEXEC). Closing the last reference to it
 * frees everything the VM owns. VM ioctls from a process with a different
 * address space fail with EIO.
 */
#define KVMMU_CREATE_VM		_IOW(KVMMU_IO, 0x01, struct kvmmu_create_vm)

/*
 * VM ioctls
 */

/* Counts of mmu-notifier callbacks the VM received from its address space. */
struct kvmmu_vm_stats {
	__u64 invalidate_range_start;
	__u64 invalidate_range_end;
	__u64 clear_flush_young;
	__u64 clear_young;
	__u64 test_young;
	__u64 change_pte;
	__u64 release;
	__u64 reserved[9];	/* written as 0 */
};

#define KVMMU_GET_STATS		_IOR(KVMMU_IO, 0x10, struct kvmmu_vm_stats)

#endif /* _UAPI_LINUX_KVMMU_H */
