// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for the VM hooks of include/kvmmu/hooks.h, run in-kernel.
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/types.hpp>

#include "kt.hpp"

using namespace kvmmu;

namespace {
const int kInval = Error(Errno::inval).to_errno();

bool same(const kvmmu_vm_counters &a, const kvmmu_vm_counters &b)
{
	return a.invalidate_range_start == b.invalidate_range_start &&
	       a.invalidate_range_end == b.invalidate_range_end &&
	       a.clear_flush_young == b.clear_flush_young && a.clear_young == b.clear_young &&
	       a.test_young == b.test_young && a.change_pte == b.change_pte &&
	       a.release == b.release;
}
} // namespace

KT_TEST(mmu_vm, create_destroy_counts_live_vms)
{
	kvmmu_module_stats before{}, during{}, after{};
	KT_EXPECT_EQ(kvmmu_get_module_stats(&before), 0);
	kvmmu_vm *vm = nullptr;
	KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
	KT_EXPECT(vm != nullptr);
	KT_EXPECT_EQ(kvmmu_get_module_stats(&during), 0);
	KT_EXPECT_EQ(during.vms_live, before.vms_live + 1);
	KT_EXPECT_EQ(during.vms_created, before.vms_created + 1);
	kvmmu_vm_destroy(vm);
	KT_EXPECT_EQ(kvmmu_get_module_stats(&after), 0);
	KT_EXPECT_EQ(after.vms_live, before.vms_live);
	kvmmu_vm_destroy(nullptr);
}

KT_TEST(mmu_vm, bad_arguments)
{
	kvmmu_vm *vm = reinterpret_cast<kvmmu_vm *>(0x1);
	KT_EXPECT_EQ(kvmmu_vm_create(1u << 31, &vm), kInval);
	KT_EXPECT(vm == reinterpret_cast<kvmmu_vm *>(0x1)); // untouched
	KT_EXPECT_EQ(kvmmu_vm_create(0, nullptr), kInval);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_start(nullptr, 0, 4096, true), kInval);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_end(nullptr, 0, 4096), kInval);
	KT_EXPECT_EQ(kvmmu_vm_clear_flush_young(nullptr, 0, 4096), kInval);
	KT_EXPECT_EQ(kvmmu_vm_clear_young(nullptr, 0, 4096), kInval);
	KT_EXPECT_EQ(kvmmu_vm_test_young(nullptr, 0), kInval);
	KT_EXPECT_EQ(kvmmu_vm_change_pte(nullptr, 0), kInval);
	KT_EXPECT_EQ(kvmmu_vm_release(nullptr), kInval);
	KT_EXPECT_EQ(kvmmu_get_module_stats(nullptr), kInval);

	KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
	kvmmu_vm_counters before{}, after{};
	KT_EXPECT_EQ(kvmmu_vm_get_counters(vm, nullptr), kInval);
	KT_EXPECT_EQ(kvmmu_vm_get_counters(vm, &before), 0);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 8192, 4096, true), kInval);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 4096, 4096, true), kInval);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0, 4096), kInval); // unpaired
	KT_EXPECT_EQ(kvmmu_vm_clear_young(vm, 4096, 0), kInval);
	KT_EXPECT_EQ(kvmmu_vm_clear_flush_young(vm, 4096, 0), kInval);
	KT_EXPECT_EQ(kvmmu_vm_get_counters(vm, &after), 0);
	KT_EXPECT(same(before, after));
	kvmmu_vm_destroy(vm);
}

KT_TEST(mmu_vm, every_hook_is_counted)
{
	kvmmu_vm *vm = nullptr;
	KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
	if (!vm)
		return;
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x5000, true), 0);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x3000, 0x9000, false), 0);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x3000, 0x9000), 0);
	KT_EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x5000), 0);
	KT_EXPECT_EQ(kvmmu_vm_clear_flush_young(vm, 0x1000, 0x2000), 0);
	KT_EXPECT_EQ(kvmmu_vm_clear_young(vm, 0x1000, 0x2000), 0);
	KT_EXPECT_EQ(kvmmu_vm_test_young(vm, 0x1000), 0);
	KT_EXPECT_EQ(kvmmu_vm_change_pte(vm, 0x1000), 0);
	KT_EXPECT_EQ(kvmmu_vm_release(vm), 0);
	kvmmu_vm_counters c{};
	KT_EXPECT_EQ(kvmmu_vm_get_counters(vm, &c), 0);
	KT_EXPECT_EQ(c.invalidate_range_start, u64(2));
	KT_EXPECT_EQ(c.invalidate_range_end, u64(2));
	KT_EXPECT_EQ(c.clear_flush_young, u64(1));
	KT_EXPECT_EQ(c.clear_young, u64(1));
	KT_EXPECT_EQ(c.test_young, u64(1));
	KT_EXPECT_EQ(c.change_pte, u64(1));
	KT_EXPECT_EQ(c.release, u64(1));
	kvmmu_vm_destroy(vm);
}

// The guest-address limit (issue 10, defect 11), in-kernel: one value, and
// the same boundary for slots, pre-faults and translations; a range may
// end exactly at 2^bits.
KT_TEST(mmu_vm, gpa_limit)
{
	KT_EXPECT_EQ(kvmmu_vm_gpa_bits(nullptr), kInval);
	kvmmu_vm *vm = nullptr;
	KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
	if (!vm)
		return;
	const int bits = kvmmu_vm_gpa_bits(vm);
	KT_EXPECT(bits >= 36 && bits <= 52);
	const u64 lim = u64(1) << bits, pg = kPageSize, hva = 0x10000000;
	kvmmu_memory_region r{0, 0, lim - 16 * pg, 16 * pg, hva};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r), 0); // ends at the limit
	kvmmu_memory_region across{1, 0, lim - 8 * pg, 16 * pg, hva + 64 * pg};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &across), kInval);
	kvmmu_memory_region at{1, 0, lim, 16 * pg, hva + 64 * pg};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &at), kInval);
	kvmmu_leaf_info l{};
	KT_EXPECT_EQ(kvmmu_vm_translate(vm, lim - pg, &l), 0);
	KT_EXPECT(!l.mapped);
	KT_EXPECT_EQ(kvmmu_vm_translate(vm, lim, &l), kInval);
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(vm, lim, pg, 0), kInval);
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(vm, lim - pg, 2 * pg, 0), kInval);
	kvmmu_vm_destroy(vm);
}
