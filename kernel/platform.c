// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel implementation of include/kvmmu/platform.h. Each function is a
 * direct call of the kernel facility it names; no policy lives here.
 */
#include <linux/bug.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/page_ref.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/capability.h>
#include <linux/swap.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#ifdef CONFIG_X86
#include <asm/e820/api.h>
#include <asm/memtype.h>
#endif

#include <kvmmu/platform.h>
#include <kvmmu_layout.h>

static_assert(sizeof(spinlock_t) == KVMMU_SPINLOCK_SIZE);
static_assert(sizeof(rwlock_t) == KVMMU_RWLOCK_SIZE);
static_assert(sizeof(struct mutex) == KVMMU_MUTEX_SIZE);
static_assert(sizeof(struct srcu_struct) == KVMMU_SRCU_SIZE);

static gfp_t to_gfp(unsigned int f)
{
	static const gfp_t kind[] = {
		[KVMMU_GFP_KERNEL] = GFP_KERNEL,
		[KVMMU_GFP_NOWAIT] = GFP_NOWAIT,
		[KVMMU_GFP_ATOMIC] = GFP_ATOMIC,
		[3] = 0,
	};

	return kind[f & KVMMU_GFP_KIND_MASK] |
	       (f & KVMMU_GFP_ZERO ? __GFP_ZERO : 0) |
	       (f & KVMMU_GFP_ACCOUNT ? __GFP_ACCOUNT : 0) |
	       (f & KVMMU_GFP_NOWARN ? __GFP_NOWARN : 0);
}

void *kvmmu_plat_kmalloc(size_t size, unsigned int gfp)
{
	return kmalloc(size, to_gfp(gfp));
}

void kvmmu_plat_kfree(const void *ptr)
{
	kfree(ptr);
}

void *kvmmu_plat_kvmalloc(size_t size, unsigned int gfp)
{
	return kvmalloc(size, to_gfp(gfp));
}

void kvmmu_plat_kvfree(const void *ptr)
{
	kvfree(ptr);
}

void *kvmmu_plat_alloc_pages(unsigned int order, unsigned int gfp)
{
	struct page *page = alloc_pages(to_gfp(gfp), order);

	return page ? page_address(page) : NULL;
}

void kvmmu_plat_free_pages(void *va, unsigned int order)
{
	__free_pages(virt_to_page(va), order);
}

void kvmmu_plat_table_count_set(void *va, int count)
{
	atomic_set(&virt_to_page(va)->pt_frag_refcount, count);
}

int kvmmu_plat_table_count_add_return(void *va, int n)
{
	return atomic_add_return(n, &virt_to_page(va)->pt_frag_refcount);
}

int kvmmu_plat_table_count(const void *va)
{
	return atomic_read(&virt_to_page(va)->pt_frag_refcount);
}

uint64_t kvmmu_plat_virt_to_phys(const void *va)
{
	return virt_to_phys((void *)va);
}

void *kvmmu_plat_phys_to_virt(uint64_t pa)
{
	return phys_to_virt(pa);
}

void kvmmu_plat_spin_init(void *lock, const char *name, void *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(spinlock_check(lock), name, key, LD_WAIT_CONFIG);
#else
	spin_lock_init((spinlock_t *)lock);	/* no lockdep: no class */
#endif
}

void kvmmu_plat_spin_lock(void *lock)
{
	spin_lock(lock);
}

void kvmmu_plat_spin_unlock(void *lock)
{
	spin_unlock(lock);
}

void kvmmu_plat_spin_assert_held(const void *lock)
{
	lockdep_assert_held((spinlock_t *)lock);
}

void kvmmu_plat_rwlock_init(void *lock, const char *name, void *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__rwlock_init(lock, name, key);
#else
	rwlock_init((rwlock_t *)lock);
#endif
}

void kvmmu_plat_read_lock(void *lock)
{
	read_lock(lock);
}

void kvmmu_plat_read_unlock(void *lock)
{
	read_unlock(lock);
}

void kvmmu_plat_write_lock(void *lock)
{
	write_lock(lock);
}

void kvmmu_plat_write_unlock(void *lock)
{
	write_unlock(lock);
}

void kvmmu_plat_rwlock_assert_held(const void *lock)
{
	lockdep_assert_held((rwlock_t *)lock);
}

void kvmmu_plat_rwlock_assert_held_write(const void *lock)
{
	lockdep_assert_held_write((rwlock_t *)lock);
}

void kvmmu_plat_mutex_init(void *lock, const char *name, void *key)
{
	__mutex_init(lock, name, key);
}

void kvmmu_plat_mutex_destroy(void *lock)
{
	mutex_destroy(lock);
}

void kvmmu_plat_mutex_lock(void *lock)
{
	mutex_lock(lock);
}

void kvmmu_plat_mutex_unlock(void *lock)
{
	mutex_unlock(lock);
}

void kvmmu_plat_mutex_assert_held(const void *lock)
{
	lockdep_assert_held((struct mutex *)lock);
}

int kvmmu_plat_srcu_init(void *ssp, const char *name, void *key)
{
#ifdef CONFIG_DEBUG_LOCK_ALLOC
	return __init_srcu_struct(ssp, name, key);
#else
	return init_srcu_struct(ssp);	/* no lockdep: no class */
#endif
}

void kvmmu_plat_srcu_cleanup(void *ssp)
{
	cleanup_srcu_struct(ssp);
}

int kvmmu_plat_srcu_read_lock(void *ssp)
{
	return srcu_read_lock(ssp);
}

void kvmmu_plat_srcu_read_unlock(void *ssp, int idx)
{
	srcu_read_unlock(ssp, idx);
}

void kvmmu_plat_synchronize_srcu(void *ssp)
{
	/*
	 * Expedited, as KVM's memslot updates: a VMM may change thousands of
	 * slots (set_memory_region_test adds 32767), each waiting for this.
	 */
	synchronize_srcu_expedited(ssp);
}

bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size)
{
	return access_ok((void __user *)(unsigned long)hva, size);
}

uint64_t kvmmu_plat_untagged_addr(uint64_t hva)
{
	return untagged_addr(hva);
}

void kvmmu_plat_might_sleep(const char *file, int line)
{
	__might_sleep(file, line);
	might_resched();
}

void kvmmu_plat_cond_resched(void)
{
	cond_resched();
}

int kvmmu_plat_cond_resched_rwlock_write(void *lock)
{
	return cond_resched_rwlock_write((rwlock_t *)lock);
}

bool kvmmu_plat_signal_pending(void)
{
	return signal_pending(current);
}

bool kvmmu_plat_capable_sys_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

void *kvmmu_plat_mm_grab_current(void)
{
	struct mm_struct *mm = current->mm;

	if (mm)
		mmgrab(mm);
	return mm;
}

void kvmmu_plat_mm_drop(void *mm)
{
	mmdrop(mm);
}

bool kvmmu_plat_mm_get(void *mm)
{
	return mmget_not_zero(mm);
}

void kvmmu_plat_mm_put(void *mm)
{
	mmput_async(mm);
}

bool kvmmu_plat_mm_is_current(const void *mm)
{
	return current->mm == mm;
}

void kvmmu_plat_mmap_read_lock(void *mm)
{
	mmap_read_lock(mm);
}

int kvmmu_plat_mmap_read_lock_killable(void *mm)
{
	return mmap_read_lock_killable(mm);
}

void kvmmu_plat_mmap_read_unlock(void *mm)
{
	mmap_read_unlock(mm);
}

int kvmmu_plat_gup_fast_one(uint64_t hva, bool write, uint64_t *pfn)
{
	struct page *page;

	if (!get_user_page_fast_only(hva, write ? FOLL_WRITE : 0, &page))
		return 0;
	*pfn = page_to_pfn(page);
	return 1;
}

long kvmmu_plat_gup_one(void *mm, uint64_t hva, unsigned int gup_flags, uint64_t *pfn)
{
	unsigned int foll = FOLL_HWPOISON;
	struct page *page;
	long r;

	if (gup_flags & KVMMU_GUP_WRITE)
		foll |= FOLL_WRITE;
	if (gup_flags & KVMMU_GUP_NOWAIT)
		foll |= FOLL_NOWAIT;
	r = get_user_pages_remote(mm, hva, 1, foll, &page, NULL, NULL);
	if (r == 1)
		*pfn = page_to_pfn(page);
	/* 0: FOLL_NOWAIT stopped where the fault would have had to wait. */
	if (r == 0)
		return (gup_flags & KVMMU_GUP_NOWAIT) ? -EBUSY : -EFAULT;
	return r;
}

int kvmmu_plat_fault_one(void *mm, uint64_t hva, unsigned int gup_flags, bool *unlocked)
{
	unsigned int fault_flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE |
				   FAULT_FLAG_INTERRUPTIBLE | FAULT_FLAG_REMOTE;
	vm_flags_t need = VM_READ;
	struct vm_area_struct *vma;
	vm_fault_t ret;

	*unlocked = false;
	if (gup_flags & KVMMU_GUP_WRITE) {
		fault_flags |= FAULT_FLAG_WRITE;
		need = VM_WRITE;
	}
	if (gup_flags & KVMMU_GUP_TRIED)
		fault_flags |= FAULT_FLAG_TRIED;
	/* As fixup_user_fault(): only a fault the VMA allows. */
	vma = vma_lookup(mm, hva);
	if (!vma || !(vma->vm_flags & need))
		return -EFAULT;
	ret = handle_mm_fault(vma, hva, fault_flags, NULL);
	/* Both mean the mmap lock was released (and the VMA may be gone). */
	if (ret & (VM_FAULT_RETRY | VM_FAULT_COMPLETED)) {
		*unlocked = true;
		return 0;
	}
	return vm_fault_to_errno(ret, FOLL_HWPOISON);
}

int kvmmu_plat_vma_flags(void *mm, uint64_t hva)
{
	struct vm_area_struct *vma = vma_lookup(mm, hva);

	if (!vma)
		return -EFAULT;
	return (vma->vm_flags & VM_READ ? KVMMU_VMA_READ : 0) |
	       (vma->vm_flags & VM_WRITE ? KVMMU_VMA_WRITE : 0) |
	       (vma->vm_flags & VM_IO ? KVMMU_VMA_IO : 0) |
	       (vma->vm_flags & VM_PFNMAP ? KVMMU_VMA_PFNMAP : 0);
}

/* The architecture's memory-type encoding of a user pte, as platform.h says. */
static unsigned int kvmmu_pte_cache_mode(pte_t pte)
{
#if defined(CONFIG_X86)
	/* Without PAT, WC has UC-'s bits: UC and UC- are tested first. */
	unsigned long pcm = pte_flags(pte) & _PAGE_CACHE_MASK;

	if (pcm == cachemode2protval(_PAGE_CACHE_MODE_WB))
		return KVMMU_CACHE_WB;
	if (pcm == cachemode2protval(_PAGE_CACHE_MODE_UC) ||
	    pcm == cachemode2protval(_PAGE_CACHE_MODE_UC_MINUS))
		return KVMMU_CACHE_UC;
	if (pcm == cachemode2protval(_PAGE_CACHE_MODE_WC))
		return KVMMU_CACHE_WC;
	return KVMMU_CACHE_UC;	/* WT, WP: not plain cacheable memory */
#elif defined(CONFIG_ARM64)
	u64 idx = pte_val(pte) & PTE_ATTRINDX_MASK;

	if (idx == PTE_ATTRINDX(MT_NORMAL) || idx == PTE_ATTRINDX(MT_NORMAL_TAGGED))
		return KVMMU_CACHE_WB;
	if (idx == PTE_ATTRINDX(MT_NORMAL_NC))
		return KVMMU_CACHE_WC;
	return KVMMU_CACHE_UC;	/* Device-nGnRnE, Device-nGnRE */
#elif defined(CONFIG_PPC_BOOK3S_64)
	/* A two-bit field: tolerant (0x30) contains non-idempotent (0x20). */
	unsigned long cc = pte_val(pte) & _PAGE_CACHE_CTL;

	if (cc == _PAGE_TOLERANT)
		return KVMMU_CACHE_WC;
	if (cc == _PAGE_NON_IDEMPOTENT)
		return KVMMU_CACHE_UC;
	return KVMMU_CACHE_WB;	/* cached, or SAO */
#else
	return KVMMU_CACHE_UC;
#endif
}

int kvmmu_plat_follow_pfn(void *mm, uint64_t hva, uint64_t *pfn, bool *writable, unsigned int *cache)
{
	spinlock_t *ptl;
	pte_t *ptep;
	int r = follow_pte(mm, hva, &ptep, &ptl);

	if (r)
		return r;
	/*
	 * No reference, whatever the pfn: the mmu notifier, not a count,
	 * ends its use (see platform.h).
	 */
	*pfn = pte_pfn(*ptep);
	*writable = pte_write(*ptep);
	*cache = kvmmu_pte_cache_mode(*ptep);
	pte_unmap_unlock(ptep, ptl);
	return 0;
}

int kvmmu_plat_fixup_user_fault(void *mm, uint64_t hva, bool write, bool *unlocked)
{
	return fixup_user_fault(mm, hva, write ? FAULT_FLAG_WRITE : 0, unlocked);
}

unsigned int kvmmu_plat_host_mapping_shift(void *mm, uint64_t hva)
{
	unsigned int shift = PAGE_SHIFT;
	unsigned long flags;
	pgd_t pgd;
	p4d_t p4d;
	pud_t pud;
	pmd_t pmd;

	/*
	 * Interrupts off keep the page tables from being freed under the
	 * walk; each entry is read once, as it may change meanwhile.
	 */
	local_irq_save(flags);
	pgd = READ_ONCE(*pgd_offset((struct mm_struct *)mm, hva));
	if (pgd_none(pgd))
		goto out;
	p4d = READ_ONCE(*p4d_offset(&pgd, hva));
	if (p4d_none(p4d) || !p4d_present(p4d))
		goto out;
	pud = READ_ONCE(*pud_offset(&p4d, hva));
	if (pud_none(pud) || !pud_present(pud))
		goto out;
	if (pud_leaf(pud)) {
		shift = PUD_SHIFT;
		goto out;
	}
	pmd = READ_ONCE(*pmd_offset(&pud, hva));
	if (pmd_none(pmd) || !pmd_present(pmd))
		goto out;
	if (pmd_leaf(pmd))
		shift = PMD_SHIFT;
out:
	local_irq_restore(flags);
	return shift;
}

static struct page *kvmmu_pfn_page(uint64_t pfn)
{
	struct page *page;

	if (!pfn_valid(pfn))
		return NULL;
	page = pfn_to_page(pfn);
	return PageReserved(page) ? NULL : page;
}

bool kvmmu_plat_pfn_has_page(uint64_t pfn)
{
	return kvmmu_pfn_page(pfn) != NULL;
}

bool kvmmu_plat_pfn_is_ram(uint64_t pfn)
{
#if defined(CONFIG_ARM64)
	/*
	 * memblock memory that is not NOMAP: reserved RAM included,
	 * firmware (NOMAP) memory and MMIO not.
	 */
	return pfn_is_map_memory(pfn);
#elif defined(CONFIG_X86)
	/*
	 * The firmware's e820 table (e820__mapped_raw_any(), exported for
	 * KVM) still lists RAM that mem= removed from the kernel's own table
	 * and from iomem, and knows nothing of struct pages; hotplugged RAM
	 * is only in iomem's System RAM (page_is_ram()). RAM is cacheable
	 * unless PAT says otherwise: for RAM pages, the memtype
	 * set_memory_uc/wc left in the page; for other ranges, the type the
	 * current mappings reserved (a range nothing reserved reads UC-).
	 */
	phys_addr_t pa = PFN_PHYS(pfn);

	if (!e820__mapped_raw_any(pa, pa + PAGE_SIZE, E820_TYPE_RAM) && !page_is_ram(pfn))
		return false;
	return !pat_enabled() || !pat_pfn_immune_to_uc_mtrr(pfn);
#else
	/* iomem's System RAM (registered from memblock memory on powerpc). */
	return page_is_ram(pfn);
#endif
}

bool kvmmu_plat_pfn_kmappable(uint64_t pfn)
{
	/*
	 * kmap_local_page() is the linear map on these 64-bit kernels (no
	 * highmem). pfn_valid() is not enough: an early section is valid
	 * throughout, also past a mem= cut the linear map does not cover.
	 * arm64: memblock memory that is not NOMAP is what the linear map
	 * holds; elsewhere iomem's System RAM is registered from the memory
	 * the kernel maps (mem= and memmap= trim it, hotplug adds to both).
	 */
	if (!pfn_valid(pfn))
		return false;
#ifdef CONFIG_ARM64
	return pfn_is_map_memory(pfn);
#else
	return page_is_ram(pfn);
#endif
}

void kvmmu_plat_pfn_put(uint64_t pfn)
{
	put_page(pfn_to_page(pfn));
}

void kvmmu_plat_pfn_mark_dirty(uint64_t pfn)
{
	struct page *page = kvmmu_pfn_page(pfn);

	if (page)
		SetPageDirty(page);
}

void kvmmu_plat_pfn_mark_accessed(uint64_t pfn)
{
	struct page *page = kvmmu_pfn_page(pfn);

	if (page)
		mark_page_accessed(page);
}

void *kvmmu_plat_kmap_pfn(uint64_t pfn)
{
	return kmap_local_page(pfn_to_page(pfn));
}

void kvmmu_plat_kunmap(void *va)
{
	kunmap_local(va);
}

void *kvmmu_plat_kmap_long(uint64_t pfn)
{
	return kmap(pfn_to_page(pfn));
}

void kvmmu_plat_kunmap_long(uint64_t pfn)
{
	kunmap(pfn_to_page(pfn));
}

void *kvmmu_plat_memremap_wb(uint64_t pa, size_t size)
{
	return memremap(pa, size, MEMREMAP_WB);
}

void kvmmu_plat_memunmap(void *va)
{
	memunmap(va);
}

void *kvmmu_plat_ioremap(uint64_t pa, size_t size, bool wc)
{
	return (__force void *)(wc ? ioremap_wc(pa, size) : ioremap(pa, size));
}

void kvmmu_plat_iounmap(void *va)
{
	iounmap((__force void __iomem *)va);
}

#define KVMMU_IO(va) ((__force void __iomem *)(va))
uint8_t kvmmu_plat_readb(const void *va) { return readb(KVMMU_IO(va)); }
uint16_t kvmmu_plat_readw(const void *va) { return readw(KVMMU_IO(va)); }
uint32_t kvmmu_plat_readl(const void *va) { return readl(KVMMU_IO(va)); }
uint64_t kvmmu_plat_readq(const void *va) { return readq(KVMMU_IO(va)); }
void kvmmu_plat_writeb(uint8_t v, void *va) { writeb(v, KVMMU_IO(va)); }
void kvmmu_plat_writew(uint16_t v, void *va) { writew(v, KVMMU_IO(va)); }
void kvmmu_plat_writel(uint32_t v, void *va) { writel(v, KVMMU_IO(va)); }
void kvmmu_plat_writeq(uint64_t v, void *va) { writeq(v, KVMMU_IO(va)); }
#undef KVMMU_IO

static_assert(sizeof(wait_queue_head_t) == KVMMU_WAITQ_SIZE);

void kvmmu_plat_waitq_init(void *wq, const char *name, void *key)
{
	__init_waitqueue_head(wq, name, key);
}

int kvmmu_plat_wait_event_killable(void *wq, bool (*cond)(void *arg), void *arg)
{
	return wait_event_killable(*(wait_queue_head_t *)wq, cond(arg));
}

void kvmmu_plat_wake_up_all_sleepers(void *wq)
{
	if (wq_has_sleeper((wait_queue_head_t *)wq))
		wake_up_all((wait_queue_head_t *)wq);
}

size_t kvmmu_plat_copy_to_user(uint64_t uaddr, const void *src, size_t n)
{
	return copy_to_user((void __user *)(unsigned long)uaddr, src, n);
}

size_t kvmmu_plat_clear_user(uint64_t uaddr, size_t n)
{
	return clear_user((void __user *)(unsigned long)uaddr, n);
}

size_t kvmmu_plat_copy_from_user(void *dst, uint64_t uaddr, size_t n)
{
	return copy_from_user(dst, (const void __user *)(unsigned long)uaddr, n);
}

void kvmmu_plat_bug(const char *file, int line, const char *what)
{
	pr_emerg("kvmmu: BUG at %s:%d: %s\n", file, line, what);
	BUG();
}

void kvmmu_plat_log(int level, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	printk("%c%ckvmmu: %pV", KERN_SOH_ASCII, '0' + (level & 7), &vaf);
	va_end(args);
}
