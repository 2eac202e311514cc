// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu_testdev.ko: RAM the driver owns, mapped into a process with
 * remap_pfn_range() (VM_IO | VM_PFNMAP), in the three shapes seed 004's
 * page rules are about. Test infrastructure for selftests/mmu/pfnmap_test;
 * the interface is in pfnmap_dev.h.
 */
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/page_ref.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "pfnmap_dev.h"

#define NPAGES		KVMMU_PFNMAP_DEV_PAGES
#define NREGIONS	KVMMU_PFNMAP_DEV_REGIONS

struct pfnmap_dev {
	struct page *higher_order;	/* alloc_pages(order 2), not compound */
	struct page *compound;		/* alloc_pages(order 2 | __GFP_COMP) */
	struct page *reserved[NPAGES];	/* order 0 each, PageReserved */
};

static struct page *pfnmap_dev_page(struct pfnmap_dev *d, unsigned int region, unsigned int i)
{
	switch (region) {
	case KVMMU_PFNMAP_DEV_HIGHER_ORDER:
		return nth_page(d->higher_order, i);
	case KVMMU_PFNMAP_DEV_COMPOUND:
		return nth_page(d->compound, i);
	default:
		return d->reserved[i];
	}
}

static void pfnmap_dev_free(struct pfnmap_dev *d)
{
	unsigned int i;

	/* The head holds the allocation's only reference; tails have none. */
	if (d->higher_order)
		__free_pages(d->higher_order, KVMMU_PFNMAP_DEV_ORDER);
	if (d->compound)
		__free_pages(d->compound, KVMMU_PFNMAP_DEV_ORDER);
	for (i = 0; i < NPAGES; i++) {
		if (!d->reserved[i])
			continue;
		ClearPageReserved(d->reserved[i]);
		__free_page(d->reserved[i]);
	}
	kfree(d);
}

static int pfnmap_dev_open(struct inode *inode, struct file *file)
{
	struct pfnmap_dev *d = kzalloc(sizeof(*d), GFP_KERNEL);
	bool ok;
	unsigned int i;

	if (!d)
		return -ENOMEM;
	d->higher_order = alloc_pages(GFP_KERNEL | __GFP_ZERO, KVMMU_PFNMAP_DEV_ORDER);
	d->compound = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_COMP, KVMMU_PFNMAP_DEV_ORDER);
	ok = d->higher_order && d->compound;
	for (i = 0; i < NPAGES; i++) {
		d->reserved[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (d->reserved[i])
			SetPageReserved(d->reserved[i]);
		else
			ok = false;
	}
	if (!ok) {
		pfnmap_dev_free(d);
		return -ENOMEM;
	}
	file->private_data = d;
	return 0;
}

/* The last mapping is gone: mappings hold a reference on the file. */
static int pfnmap_dev_release(struct inode *inode, struct file *file)
{
	pfnmap_dev_free(file->private_data);
	return 0;
}

static int pfnmap_dev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pfnmap_dev *d = file->private_data;
	const unsigned long total = NREGIONS * NPAGES, npages = vma_pages(vma);
	unsigned long i;

	/* A private mapping would need vm_pgoff == pfn (COW of a pfnmap). */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= total || npages > total - vma->vm_pgoff)
		return -EINVAL;
	for (i = 0; i < npages; i++) {
		unsigned long n = vma->vm_pgoff + i;
		struct page *page = pfnmap_dev_page(d, n / NPAGES, n % NPAGES);
		int r = remap_pfn_range(vma, vma->vm_start + i * PAGE_SIZE, page_to_pfn(page),
					PAGE_SIZE, vma->vm_page_prot);

		if (r)
			return r;
	}
	return 0;
}

static long pfnmap_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct pfnmap_dev *d = file->private_data;
	struct kvmmu_pfnmap_dev_info *info;
	unsigned int r, i;
	long ret = 0;

	if (cmd != KVMMU_PFNMAP_DEV_INFO)
		return -ENOTTY;
	info = kzalloc(sizeof(*info), GFP_KERNEL);
	if (!info)
		return -ENOMEM;
	info->page_size = PAGE_SIZE;
	for (r = 0; r < NREGIONS; r++) {
		for (i = 0; i < NPAGES; i++) {
			struct page *page = pfnmap_dev_page(d, r, i);

			info->pfn[r][i] = page_to_pfn(page);
			/* This page's own count (a tail's is 0), not its folio's. */
			info->refcount[r][i] = page_ref_count(page);
		}
	}
	if (copy_to_user((void __user *)arg, info, sizeof(*info)))
		ret = -EFAULT;
	kfree(info);
	return ret;
}

static const struct file_operations pfnmap_dev_fops = {
	.owner = THIS_MODULE,
	.open = pfnmap_dev_open,
	.release = pfnmap_dev_release,
	.mmap = pfnmap_dev_mmap,
	.unlocked_ioctl = pfnmap_dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice pfnmap_dev_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KVMMU_PFNMAP_DEV_NAME,
	.fops = &pfnmap_dev_fops,
	.mode = 0600,
};

module_misc_device(pfnmap_dev_misc);

MODULE_DESCRIPTION("kvmmu test device: driver RAM mapped with remap_pfn_range()");
MODULE_LICENSE("GPL");
