// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel implementation of include/kvmmu/platform.h. Each function is a
 * direct call of the kernel facility it names; no policy lives here.
 */
#include <linux/bug.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/page_ref.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/uaccess.h>

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

void *kvmmu_plat_alloc_pages(unsigned int order, unsigned int gfp)
{
	struct page *page = alloc_pages(to_gfp(gfp), order);

	return page ? page_address(page) : NULL;
}

void kvmmu_plat_free_pages(void *va, unsigned int order)
{
	__free_pages(virt_to_page(va), order);
}

void kvmmu_plat_page_ref_add(void *va, int n)
{
	page_ref_add(virt_to_page(va), n);
}

int kvmmu_plat_page_ref_sub_return(void *va, int n)
{
	return page_ref_sub_return(virt_to_page(va), n);
}

void kvmmu_plat_page_ref_set(void *va, int count)
{
	set_page_count(virt_to_page(va), count);
}

int kvmmu_plat_page_refs(const void *va)
{
	return page_ref_count(virt_to_page(va));
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
	synchronize_srcu(ssp);
}

bool kvmmu_plat_user_range_ok(uint64_t hva, uint64_t size)
{
	return access_ok((void __user *)(unsigned long)hva, size);
}

void kvmmu_plat_might_sleep(const char *file, int line)
{
	__might_sleep(file, line);
	might_resched();
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
