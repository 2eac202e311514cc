// SPDX-License-Identifier: GPL-2.0
/*
 * kvmmu's KUnit suites. Suite names follow kvmmu_<component>_<area>; each
 * case calls a C++ body (the *_test.cpp files) or checks the C++ core against
 * the kernel's own definitions.
 */
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/module.h>

#include "kt.h"

int kvmmu_kt_errno(unsigned int idx);
unsigned int kvmmu_kt_errno_count(void);
unsigned int kvmmu_kt_page_shift(void);

/* The C++ errno values (generated from kernel headers) match the kernel's. */
static void kt_runtime_result__errno_values(struct kunit *test)
{
	static const int kernel[] = {
		-EPERM, -ENOENT, -EINTR, -EIO, -EAGAIN, -ENOMEM, -EFAULT, -EBUSY,
		-EEXIST, -ENODEV, -EINVAL, -ENOSPC, -ERANGE, -ENOTTY, -E2BIG,
		-EOPNOTSUPP, -EHWPOISON,
	};
	unsigned int i;

	KUNIT_ASSERT_EQ(test, kvmmu_kt_errno_count(), (unsigned int)ARRAY_SIZE(kernel));
	for (i = 0; i < ARRAY_SIZE(kernel); i++)
		KUNIT_EXPECT_EQ_MSG(test, kvmmu_kt_errno(i), kernel[i], "index %u", i);
}

static void kt_runtime_types__page_shift(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, kvmmu_kt_page_shift(), (unsigned int)PAGE_SHIFT);
}

#define RUNTIME_RESULT(CXX, C)				\
	C(runtime_result, errno_values)			\
	CXX(runtime_result, value_and_error)		\
	CXX(runtime_result, try_propagates)		\
	CXX(runtime_result, move_only_value)
KT_SUITE(runtime_result, RUNTIME_RESULT);

#define RUNTIME_ALLOC(CXX, C)				\
	CXX(runtime_alloc, alignment)			\
	CXX(runtime_alloc, rejects_bad_requests)	\
	CXX(runtime_alloc, zeroed)			\
	CXX(runtime_alloc, atomic_under_spinlock)	\
	CXX(runtime_alloc, new_and_delete_forms)
KT_SUITE(runtime_alloc, RUNTIME_ALLOC);

#define RUNTIME_LOCK(CXX, C)				\
	CXX(runtime_lock, guards_hold_their_lock)	\
	CXX(runtime_lock, init_sites_are_distinct_classes) \
	CXX(runtime_lock, atomics)
KT_SUITE(runtime_lock, RUNTIME_LOCK);

#define RUNTIME_TYPES(CXX, C)				\
	C(runtime_types, page_shift)			\
	CXX(runtime_types, conversions)
KT_SUITE(runtime_types, RUNTIME_TYPES);

#define MMU_VM(CXX, C)					\
	CXX(mmu_vm, create_destroy_counts_live_vms)	\
	CXX(mmu_vm, bad_arguments)			\
	CXX(mmu_vm, every_hook_is_counted)		\
	CXX(mmu_vm, gpa_limit)
KT_SUITE(mmu_vm, MMU_VM);

#define MMU_PGTABLE(CXX, C)				\
	CXX(mmu_pgtable, ept4)				\
	CXX(mmu_pgtable, ept5)				\
	CXX(mmu_pgtable, arm64_s2_4k_3level)		\
	CXX(mmu_pgtable, arm64_s2_4k_4level)		\
	CXX(mmu_pgtable, arm64_s2_16k)			\
	CXX(mmu_pgtable, arm64_s2_64k)			\
	CXX(mmu_pgtable, ppc_radix_4k)			\
	CXX(mmu_pgtable, ppc_radix_64k)			\
	CXX(mmu_pgtable, table_pages_ept4)		\
	CXX(mmu_pgtable, table_pages_arm64_s2_4k)	\
	CXX(mmu_pgtable, table_pages_ppc_radix_64k)
KT_SUITE(mmu_pgtable, MMU_PGTABLE);

/* Cases on a real user address space: see kunit/glue.c. */
#include "kt_mm.h"

#define MMU_FAULT(CXX, C)				\
	CXX(mmu_fault, user_memory_through_stage2)	\
	CXX(mmu_fault, munmap_invalidates)		\
	CXX(mmu_fault, retry_ranges)			\
	CXX(mmu_fault, dirty_log)			\
	CXX(mmu_fault, readonly_slot_and_bad_input)	\
	CXX(mmu_fault, long_operations_in_pieces)
KT_SUITE_MM(mmu_fault, MMU_FAULT);

#define MMU_GUEST_WALK(CXX, C)				\
	CXX(mmu_guest_walk, x86_4level)			\
	CXX(mmu_guest_walk, arm64_stage2)
KT_SUITE(mmu_guest_walk, MMU_GUEST_WALK);

#define MMU_MEMSLOT(CXX, C)				\
	CXX(mmu_memslot, rules)
KT_SUITE(mmu_memslot, MMU_MEMSLOT);

#define PFNCACHE_LIFECYCLE(CXX, C)				\
	CXX(pfncache_lifecycle, by_gpa_reads_user_memory)	\
	CXX(pfncache_lifecycle, by_hva_and_moving)		\
	CXX(pfncache_lifecycle, overlapping_invalidation_fails_check) \
	CXX(pfncache_lifecycle, deactivate_and_destroy)	\
	CXX(pfncache_lifecycle, error_codes)			\
	CXX(pfncache_lifecycle, memslot_changes)
KT_SUITE_MM(pfncache_lifecycle, PFNCACHE_LIFECYCLE);

/* Kernel threads against scripted invalidations (kt.hpp's threads). */
#define PFNCACHE_RACE(CXX, C)					\
	CXX(pfncache_race, refresh_sleeps_until_end)		\
	CXX(pfncache_race, invalidation_during_lookup_retries)	\
	CXX(pfncache_race, unrelated_invalidations_never_retry)	\
	CXX(pfncache_race, readers_never_see_stale)		\
	CXX(pfncache_race, refresh_progresses_under_unrelated_churn)
KT_SUITE_MM(pfncache_race, PFNCACHE_RACE);

/*
 * Kernel pages remap_pfn_range()d uncached, write-combining or cached into
 * the case's user mm (kt.hpp's pfnmap helpers).
 */
#define PASSTHROUGH_MEMTYPE(CXX, C)				\
	CXX(passthrough_memtype, uncached_is_device)		\
	CXX(passthrough_memtype, write_combining)		\
	CXX(passthrough_memtype, cached_is_normal_wb)		\
	CXX(passthrough_memtype, cached_access)			\
	CXX(passthrough_memtype, uncached_access)		\
	CXX(passthrough_memtype, write_combining_access)	\
	CXX(passthrough_memtype, contiguous_block_leaf)	\
	CXX(passthrough_memtype, mmio_hook_cached)		\
	CXX(passthrough_memtype, mmio_hook_uncached)
KT_SUITE_MM(passthrough_memtype, PASSTHROUGH_MEMTYPE);

kunit_test_suites(&kt_suite_runtime_result, &kt_suite_runtime_alloc,
		  &kt_suite_runtime_lock, &kt_suite_runtime_types, &kt_suite_mmu_vm,
		  &kt_suite_mmu_pgtable, &kt_suite_mmu_guest_walk, &kt_suite_mmu_memslot,
		  &kt_suite_mmu_fault, &kt_suite_pfncache_lifecycle, &kt_suite_pfncache_race,
		  &kt_suite_passthrough_memtype);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmmu KUnit suites");
