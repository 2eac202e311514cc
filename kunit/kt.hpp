// SPDX-License-Identifier: GPL-2.0
// C++ side of kvmmu's KUnit suites. A test body is an extern-C function
// defined with KT_TEST(suite, name); the KUnit case that calls it is C
// (kunit/suites.c). Expectations report through the C helpers below, which
// record the failure (safe in atomic context) and let the test continue;
// the C case reports recorded failures to KUnit when the body returns.
#pragma once

#include <kvmmu/util.hpp>

extern "C" {
/* get_page()/put_page()/page_count() of the page at kernel address @va. */
void kvmmu_kt_page_get(void *va);
void kvmmu_kt_page_put(void *va);
int kvmmu_kt_page_count(const void *va);
/*
 * A kernel thread running fn(arg), with the case's user mm if it has one
 * (nullptr if it could not be started); join waits for fn to return and
 * reaps it (nullptr is ignored). kunit/glue.c.
 */
void *kvmmu_kt_thread_start(void (*fn)(void *arg), void *arg, const char *name);
void kvmmu_kt_thread_join(void *thread);
void kvmmu_kt_msleep(unsigned int ms);
uint64_t kvmmu_kt_now_ns(void);
/*
 * A zeroed kernel page (alloc_page) mapped read-write, MAP_SHARED, at a
 * user address of the case's mm: vm_mmap() of an anon-inode file whose
 * ->mmap does remap_pfn_range() (VM_IO | VM_PFNMAP) with vm_page_prot
 * made pgprot_noncached (UC), pgprot_writecombine (WC) or left cached
 * (WB). nullptr on failure. unmap is vm_munmap (once; 0 or its error);
 * free unmaps if still mapped, then __free_page. read copies from the
 * page through page_address(). memtype is the KVMMU_LEAF_MT_* the
 * architecture's pte encoding gives @mode (x86 without PAT: WC is UC-,
 * DEVICE). kunit/glue.c.
 */
constexpr unsigned KVMMU_KT_PFNMAP_UC = 0, KVMMU_KT_PFNMAP_WC = 1, KVMMU_KT_PFNMAP_WB = 2;
void *kvmmu_kt_pfnmap_map(unsigned int mode);
void *kvmmu_kt_pfnmap_map_order(unsigned int mode, unsigned int order);
uint64_t kvmmu_kt_pfnmap_addr(const void *m);
uint64_t kvmmu_kt_pfnmap_pfn(const void *m);
int kvmmu_kt_pfnmap_page_count(const void *m);
void kvmmu_kt_pfnmap_read(const void *m, unsigned int off, void *dst, size_t n);
int kvmmu_kt_pfnmap_unmap(void *m);
void kvmmu_kt_pfnmap_free(void *m);
unsigned int kvmmu_kt_pfnmap_memtype(unsigned int mode);
void kvmmu_kt_fail(void *kt, const char *file, int line, const char *expr);
void kvmmu_kt_fail_eq(void *kt, const char *file, int line, const char *a, const char *b,
		      long long va, long long vb);
}

#define KT_TEST(suite, name)                                          \
	extern "C" void kvmmu_kt_##suite##__##name(void *kt);         \
	void kvmmu_kt_##suite##__##name(void *kt)

#define KT_EXPECT(cond)                                               \
	do {                                                          \
		if (!(cond))                                          \
			kvmmu_kt_fail(kt, __FILE__, __LINE__, #cond); \
	} while (0)

#define KT_EXPECT_EQ(a, b)                                                    \
	do {                                                                  \
		auto va__ = (a);                                              \
		auto vb__ = (b);                                              \
		if (!(va__ == vb__))                                          \
			kvmmu_kt_fail_eq(kt, __FILE__, __LINE__, #a, #b,      \
					 (long long)va__, (long long)vb__);   \
	} while (0)
