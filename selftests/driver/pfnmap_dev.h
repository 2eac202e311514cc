/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmmu_testdev.ko: a test-only driver for selftests/mmu/pfnmap_test (never
 * part of kvmmu.ko; loaded by the test initramfs just before that test).
 *
 * Each open of /dev/kvmmu_pfnmap_test allocates three regions of
 * KVMMU_PFNMAP_DEV_PAGES pages of RAM, zeroed, owned by the driver:
 *   region 0: one non-compound order-2 allocation (tail pages: count 0);
 *   region 1: one compound order-2 page (__GFP_COMP);
 *   region 2: single pages marked PageReserved.
 * mmap (MAP_SHARED only) remaps them with remap_pfn_range(), so the VMA is
 * VM_IO | VM_PFNMAP; page r * KVMMU_PFNMAP_DEV_PAGES + i of the file is
 * page i of region r. KVMMU_PFNMAP_DEV_INFO reports their pfns and each
 * page's own reference count (page_ref_count(), not the folio's) now.
 * Everything is freed when the file is released (after its last mapping
 * went away).
 */
#ifndef KVMMU_PFNMAP_DEV_H
#define KVMMU_PFNMAP_DEV_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVMMU_PFNMAP_DEV_NAME		"kvmmu_pfnmap_test"
#define KVMMU_PFNMAP_DEV_ORDER		2
#define KVMMU_PFNMAP_DEV_PAGES		(1 << KVMMU_PFNMAP_DEV_ORDER)
#define KVMMU_PFNMAP_DEV_REGIONS	3

enum kvmmu_pfnmap_dev_region {
	KVMMU_PFNMAP_DEV_HIGHER_ORDER = 0,	/* non-compound order-2 allocation */
	KVMMU_PFNMAP_DEV_COMPOUND = 1,		/* compound order-2 page */
	KVMMU_PFNMAP_DEV_RESERVED = 2,		/* PageReserved pages */
};

struct kvmmu_pfnmap_dev_info {
	__u64 page_size;
	__u64 pfn[KVMMU_PFNMAP_DEV_REGIONS][KVMMU_PFNMAP_DEV_PAGES];
	__s32 refcount[KVMMU_PFNMAP_DEV_REGIONS][KVMMU_PFNMAP_DEV_PAGES];
};

#define KVMMU_PFNMAP_DEV_INFO	_IOR(0xE5, 0x00, struct kvmmu_pfnmap_dev_info)

#endif
