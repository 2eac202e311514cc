// SPDX-License-Identifier: GPL-2.0
/*
 * The KUnit module runs the same core code as kvmmu.ko, built from the same
 * sources with the same flags: this file brings in the platform glue,
 * core.cpp the C++ core. Plus the reporting helpers of kt.hpp.
 */
#include "../kernel/platform.c"
/* Its own tracepoint system: kvmmu.ko may be loaded alongside. */
#define KVMMU_TRACE_KUNIT
#include "../kernel/trace.c"

#include <kunit/test.h>

/*
 * Expectations may fail in atomic context (under a spinlock or rwlock), where
 * KUNIT_FAIL, which allocates, must not run. Failures are recorded in a
 * fixed buffer and reported when the case's body returns (kt.h). Cases run
 * one at a time, so one buffer serves.
 */
#define KT_MAX_FAILS 8
static char kt_msgs[KT_MAX_FAILS][256];
static unsigned int kt_nfails;
static DEFINE_SPINLOCK(kt_lock);

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr);
void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb);
void kvmmu_kt_begin(struct kunit *test);
void kvmmu_kt_end(struct kunit *test);

static __printf(1, 2) void kt_record(const char *fmt, ...)
{
	unsigned long flags;
	va_list args;

	spin_lock_irqsave(&kt_lock, flags);
	if (kt_nfails < KT_MAX_FAILS) {
		va_start(args, fmt);
		vsnprintf(kt_msgs[kt_nfails], sizeof(kt_msgs[0]), fmt, args);
		va_end(args);
	}
	kt_nfails++;
	spin_unlock_irqrestore(&kt_lock, flags);
}

void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr)
{
	kt_record("%s:%d: expected %s", file, line, expr);
}

void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb)
{
	kt_record("%s:%d: expected %s == %s, got %lld != %lld", file, line, a, b, va, vb);
}

void kvmmu_kt_begin(struct kunit *test)
{
	kt_nfails = 0;
}

void kvmmu_kt_end(struct kunit *test)
{
	unsigned int i;

	for (i = 0; i < min(kt_nfails, (unsigned int)KT_MAX_FAILS); i++)
		KUNIT_FAIL(test, "%s", kt_msgs[i]);
	if (kt_nfails > KT_MAX_FAILS)
		KUNIT_FAIL(test, "... and %u more failed expectations", kt_nfails - KT_MAX_FAILS);
}

/*
 * A real user address space for the fault-path suites. KUnit runs a suite's
 * suite_init in the context of the process loading this module (insmod),
 * and each case in a kernel thread: the suite grabs insmod's mm and every
 * case adopts it with kthread_use_mm(), so the VM under test faults on real
 * user memory (vm_mmap) through real GUP, and a real mmu_notifier tells it
 * about vm_munmap. insmod is blocked in init_module meanwhile; the mappings
 * a case makes are gone when it ends.
 */
#include <linux/kthread.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>

#include "../kernel/notifier.c"
#include "kt_mm.h"

static struct mm_struct *kt_user_mm;

int kvmmu_kt_mm_suite_init(struct kunit_suite *suite)
{
	if (current->mm) {
		mmgrab(current->mm);
		kt_user_mm = current->mm;
	}
	return 0;
}

void kvmmu_kt_mm_suite_exit(struct kunit_suite *suite)
{
	if (kt_user_mm)
		mmdrop(kt_user_mm);
	kt_user_mm = NULL;
}

int kvmmu_kt_mm_case_init(struct kunit *test)
{
	if (kt_user_mm && mmget_not_zero(kt_user_mm))
		kthread_use_mm(kt_user_mm);
	return 0;
}

void kvmmu_kt_mm_case_exit(struct kunit *test)
{
	if (kt_user_mm && current->mm == kt_user_mm) {
		kthread_unuse_mm(kt_user_mm);
		mmput(kt_user_mm);
	}
}

bool kvmmu_kt_have_user_mm(void *test)
{
	if (current->mm)
		return true;
	kunit_mark_skipped((struct kunit *)test, "no user address space (module not loaded by a process)");
	return false;
}

/*
 * The cases count base pages: the mapping must never be backed by a
 * transparent huge page. do_madvise() is not exported, so the VMA is
 * placed to hold no whole PMD-aligned block: it starts one page past a PMD
 * boundary and, if it is a PMD or larger, THP cannot map any part of it
 * with a huge page. (With 64K pages the cases' 32 pages are exactly one
 * PMD; an aligned mmap, which ASLR gives once in 32 runs, made them fail.)
 */
uint64_t kvmmu_kt_user_map(uint64_t len)
{
	unsigned long a, s;

	a = vm_mmap(NULL, 0, len + 2 * PMD_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(a))
		return 0;
	s = ALIGN(a, PMD_SIZE) + PAGE_SIZE;
	if ((s > a && vm_munmap(a, s - a)) ||
	    vm_munmap(s + len, a + len + 2 * PMD_SIZE - (s + len))) {
		vm_munmap(a, len + 2 * PMD_SIZE);
		return 0;
	}
	return s;
}

int kvmmu_kt_user_unmap(uint64_t addr, uint64_t len)
{
	return vm_munmap(addr, len);
}

int kvmmu_kt_user_write(uint64_t addr, const void *src, size_t n)
{
	return copy_to_user((void __user *)(unsigned long)addr, src, n) ? -EFAULT : 0;
}

int kvmmu_kt_user_read(void *dst, uint64_t addr, size_t n)
{
	return copy_from_user(dst, (const void __user *)(unsigned long)addr, n) ? -EFAULT : 0;
}

void *kvmmu_kt_notifier_attach(struct kvmmu_vm *vm)
{
	struct kvmmu_notifier *n = kzalloc(sizeof(*n), GFP_KERNEL);

	if (n && kvmmu_notifier_register(n, vm, current->mm)) {
		kfree(n);
		n = NULL;
	}
	return n;
}

void kvmmu_kt_page_get(void *va);
void kvmmu_kt_page_put(void *va);
int kvmmu_kt_page_count(const void *va);

void kvmmu_kt_page_get(void *va)
{
	get_page(virt_to_page(va));
}

void kvmmu_kt_page_put(void *va)
{
	put_page(virt_to_page(va));
}

int kvmmu_kt_page_count(const void *va)
{
	return page_count(virt_to_page(va));
}

void kvmmu_kt_notifier_detach(void *n)
{
	if (!n)
		return;
	kvmmu_notifier_unregister(n);
	kfree(n);
}

/*
 * Kernel threads for the race cases: fn(arg) runs in a kthread of its own,
 * which adopts the starting case's user mm (if the case has one) like the
 * case thread does. kvmmu_kt_thread_join() waits until fn has returned,
 * then reaps the thread; fn must end on its own (the caller tells it to).
 */
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/sched/task.h>

struct kvmmu_kt_thread {
	void (*fn)(void *arg);
	void *arg;
	struct mm_struct *mm;
	struct task_struct *task;
	struct completion done;
};

void *kvmmu_kt_thread_start(void (*fn)(void *arg), void *arg, const char *name);
void kvmmu_kt_thread_join(void *thread);
void kvmmu_kt_msleep(unsigned int ms);
uint64_t kvmmu_kt_now_ns(void);

static int kt_thread_main(void *data)
{
	struct kvmmu_kt_thread *t = data;
	bool mm = t->mm && mmget_not_zero(t->mm);

	if (mm)
		kthread_use_mm(t->mm);
	t->fn(t->arg);
	if (mm) {
		kthread_unuse_mm(t->mm);
		mmput(t->mm);
	}
	complete(&t->done);
	return 0;
}

void *kvmmu_kt_thread_start(void (*fn)(void *arg), void *arg, const char *name)
{
	struct kvmmu_kt_thread *t = kzalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	t->fn = fn;
	t->arg = arg;
	/* Held (mmgrab) by the suite while its cases run. */
	t->mm = current->mm;
	init_completion(&t->done);
	t->task = kthread_create(kt_thread_main, t, "kvmmu_kt_%s", name);
	if (IS_ERR(t->task)) {
		kfree(t);
		return NULL;
	}
	/* Reaped by join, even once it has exited. */
	get_task_struct(t->task);
	wake_up_process(t->task);
	return t;
}

void kvmmu_kt_thread_join(void *thread)
{
	struct kvmmu_kt_thread *t = thread;

	if (!t)
		return;
	wait_for_completion(&t->done);
	kthread_stop(t->task);
	put_task_struct(t->task);
	kfree(t);
}

void kvmmu_kt_msleep(unsigned int ms)
{
	msleep(ms);
}

uint64_t kvmmu_kt_now_ns(void)
{
	return ktime_get_ns();
}

/*
 * Passthrough cases (kunit/passthrough_test.cpp): a kernel page mapped into
 * the case's user mm the way a driver maps device memory, with
 * remap_pfn_range() (VM_IO | VM_PFNMAP) and a chosen memory type. The file
 * is an anon inode whose ->mmap does the remap; the mapping keeps its own
 * reference to it (.owner keeps this module while a delayed fput is due).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <kvmmu/hooks.h>

/* kt.hpp's declarations (C++ only), repeated. */
#define KVMMU_KT_PFNMAP_UC 0u
#define KVMMU_KT_PFNMAP_WC 1u
#define KVMMU_KT_PFNMAP_WB 2u
void *kvmmu_kt_pfnmap_map(unsigned int mode);
void *kvmmu_kt_pfnmap_map_order(unsigned int mode, unsigned int order);
uint64_t kvmmu_kt_pfnmap_addr(const void *m);
uint64_t kvmmu_kt_pfnmap_pfn(const void *m);
int kvmmu_kt_pfnmap_page_count(const void *m);
void kvmmu_kt_pfnmap_read(const void *m, unsigned int off, void *dst, size_t n);
int kvmmu_kt_pfnmap_unmap(void *m);
void kvmmu_kt_pfnmap_free(void *m);
unsigned int kvmmu_kt_pfnmap_memtype(unsigned int mode);

struct kvmmu_kt_pfnmap {
	struct page *page;
	unsigned long addr;
	unsigned int mode;
	unsigned int order;	/* 2^order contiguous pages, mapped at an aligned address */
	bool mapped;
};

static int kt_pfnmap_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvmmu_kt_pfnmap *m = file->private_data;

	if (!(vma->vm_flags & VM_SHARED) || vma->vm_pgoff || vma_pages(vma) != (1ul << m->order))
		return -EINVAL;
	if (m->mode == KVMMU_KT_PFNMAP_UC)
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	else if (m->mode == KVMMU_KT_PFNMAP_WC)
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	return remap_pfn_range(vma, vma->vm_start, page_to_pfn(m->page), PAGE_SIZE << m->order,
			       vma->vm_page_prot);
}

static const struct file_operations kt_pfnmap_fops = {
	.owner = THIS_MODULE,
	.mmap = kt_pfnmap_mmap,
};

/*
 * 2^order zeroed contiguous pages (naturally aligned physically), mapped
 * with remap_pfn_range() at a user address aligned to their size: a
 * reservation twice that size is made and dropped, then the aligned part
 * is mapped MAP_FIXED.
 */
void *kvmmu_kt_pfnmap_map_order(unsigned int mode, unsigned int order)
{
	struct kvmmu_kt_pfnmap *m = kzalloc(sizeof(*m), GFP_KERNEL);
	const unsigned long size = PAGE_SIZE << order;
	unsigned long a, r;
	struct file *file;

	if (!m)
		return NULL;
	m->mode = mode;
	m->order = order;
	m->page = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, order);
	if (!m->page)
		goto out_free;
	file = anon_inode_getfile("kvmmu_kt_pfnmap", &kt_pfnmap_fops, m, O_RDWR);
	if (IS_ERR(file))
		goto out_page;
	r = vm_mmap(NULL, 0, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	a = IS_ERR_VALUE(r) ? r : ALIGN(r, size);
	if (!IS_ERR_VALUE(r)) {
		vm_munmap(r, 2 * size);
		a = vm_mmap(file, a, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, 0);
	}
	fput(file);
	if (IS_ERR_VALUE(a))
		goto out_page;
	m->addr = a;
	m->mapped = true;
	return m;
out_page:
	__free_pages(m->page, order);
out_free:
	kfree(m);
	return NULL;
}

void *kvmmu_kt_pfnmap_map(unsigned int mode)
{
	return kvmmu_kt_pfnmap_map_order(mode, 0);
}

uint64_t kvmmu_kt_pfnmap_addr(const void *m)
{
	return ((const struct kvmmu_kt_pfnmap *)m)->addr;
}

uint64_t kvmmu_kt_pfnmap_pfn(const void *m)
{
	return page_to_pfn(((const struct kvmmu_kt_pfnmap *)m)->page);
}

int kvmmu_kt_pfnmap_page_count(const void *m)
{
	return page_count(((const struct kvmmu_kt_pfnmap *)m)->page);
}

void kvmmu_kt_pfnmap_read(const void *m, unsigned int off, void *dst, size_t n)
{
	memcpy(dst, (const u8 *)page_address(((const struct kvmmu_kt_pfnmap *)m)->page) + off, n);
}

int kvmmu_kt_pfnmap_unmap(void *h)
{
	struct kvmmu_kt_pfnmap *m = h;

	if (!m->mapped)
		return 0;
	m->mapped = false;
	return vm_munmap(m->addr, PAGE_SIZE << m->order);
}

void kvmmu_kt_pfnmap_free(void *h)
{
	struct kvmmu_kt_pfnmap *m = h;

	if (!m)
		return;
	kvmmu_kt_pfnmap_unmap(m);
	__free_pages(m->page, m->order);
	kfree(m);
}

/*
 * The KVMMU_LEAF_MT_* the architecture's pte encoding gives each mode,
 * from the kernel's definitions, not kvmmu's: x86 without PAT (the KUnit
 * kernel) has no WC, pgprot_writecombine() gives UC- there.
 */
unsigned int kvmmu_kt_pfnmap_memtype(unsigned int mode)
{
	switch (mode) {
	case KVMMU_KT_PFNMAP_UC:
		return KVMMU_LEAF_MT_DEVICE;
	case KVMMU_KT_PFNMAP_WC:
#ifdef CONFIG_X86
		return pat_enabled() ? KVMMU_LEAF_MT_NORMAL_NC : KVMMU_LEAF_MT_DEVICE;
#else
		return KVMMU_LEAF_MT_NORMAL_NC;
#endif
	default:
		return KVMMU_LEAF_MT_NORMAL_WB;
	}
}
