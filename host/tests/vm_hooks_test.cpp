// SPDX-License-Identifier: GPL-2.0
// Host tests of the VM hooks, through the extern-C interface a KVM core
// uses (include/kvmmu/hooks.h) and nothing else.
#include <errno.h>

#include <atomic>
#include <thread>
#include <vector>

#include <kvmmu/hooks.h>

#include "host_test.hpp"

namespace {

using Counter = uint64_t kvmmu_vm_counters::*;

const Counter kAllCounters[] = {
	&kvmmu_vm_counters::invalidate_range_start,
	&kvmmu_vm_counters::invalidate_range_end,
	&kvmmu_vm_counters::clear_flush_young,
	&kvmmu_vm_counters::clear_young,
	&kvmmu_vm_counters::test_young,
	&kvmmu_vm_counters::change_pte,
	&kvmmu_vm_counters::release,
};

kvmmu_module_stats module_stats()
{
	kvmmu_module_stats s{};

	EXPECT_EQ(kvmmu_get_module_stats(&s), 0);
	return s;
}

// A sentinel that kvmmu_vm_create() must leave alone when it fails.
kvmmu_vm *const kUntouched = reinterpret_cast<kvmmu_vm *>(0x5a5a5a5a);

using VmCreateTest = HostTest;

TEST_F(VmCreateTest, CreateAndDestroy)
{
	const kvmmu_module_stats before = module_stats();
	kvmmu_vm *vm = kUntouched;

	ASSERT_EQ(kvmmu_vm_create(0, &vm), 0);
	ASSERT_NE(vm, kUntouched);
	ASSERT_NE(vm, nullptr);
	kvmmu_module_stats s = module_stats();
	EXPECT_EQ(s.vms_created, before.vms_created + 1);
	EXPECT_EQ(s.vms_live, before.vms_live + 1);

	kvmmu_vm_counters c;
	ASSERT_EQ(kvmmu_vm_get_counters(vm, &c), 0);
	for (Counter f : kAllCounters)
		EXPECT_EQ(c.*f, 0u);

	kvmmu_vm_destroy(vm);
	s = module_stats();
	EXPECT_EQ(s.vms_created, before.vms_created + 1);
	EXPECT_EQ(s.vms_live, before.vms_live);
}

TEST_F(VmCreateTest, UnknownFlags)
{
	const kvmmu_module_stats before = module_stats();

	for (uint32_t flags : {1u, 2u, 0x80000000u, ~0u}) {
		kvmmu_vm *vm = kUntouched;
		EXPECT_EQ(kvmmu_vm_create(flags, &vm), -EINVAL) << "flags " << flags;
		EXPECT_EQ(vm, kUntouched);
	}
	const kvmmu_module_stats after = module_stats();
	EXPECT_EQ(after.vms_created, before.vms_created);
	EXPECT_EQ(after.vms_live, before.vms_live);
}

TEST_F(VmCreateTest, NullVmp)
{
	const kvmmu_module_stats before = module_stats();

	EXPECT_EQ(kvmmu_vm_create(0, nullptr), -EINVAL);
	EXPECT_EQ(module_stats().vms_created, before.vms_created);
}

TEST_F(VmCreateTest, OutOfMemory)
{
	const kvmmu_module_stats before = module_stats();
	const long live = kvmmu_host_live_allocs();
	kvmmu_vm *vm = kUntouched;

	kvmmu_host_fail_alloc_after(0);
	EXPECT_EQ(kvmmu_vm_create(0, &vm), -ENOMEM);
	EXPECT_EQ(vm, kUntouched);
	EXPECT_EQ(kvmmu_host_live_allocs(), live);
	const kvmmu_module_stats after = module_stats();
	EXPECT_EQ(after.vms_created, before.vms_created);
	EXPECT_EQ(after.vms_live, before.vms_live);

	kvmmu_host_fail_alloc_reset();
	ASSERT_EQ(kvmmu_vm_create(0, &vm), 0);
	kvmmu_vm_destroy(vm);
}

TEST_F(VmCreateTest, DestroyNull)
{
	const kvmmu_module_stats before = module_stats();

	kvmmu_vm_destroy(nullptr);
	EXPECT_EQ(module_stats().vms_live, before.vms_live);
}

TEST_F(VmCreateTest, NullArguments)
{
	kvmmu_vm_counters c;

	EXPECT_EQ(kvmmu_vm_invalidate_range_start(nullptr, 0x1000, 0x2000, true), -EINVAL);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(nullptr, 0x1000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_clear_flush_young(nullptr, 0x1000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_clear_young(nullptr, 0x1000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_test_young(nullptr, 0x1000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_change_pte(nullptr, 0x1000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_release(nullptr), -EINVAL);
	EXPECT_EQ(kvmmu_vm_get_counters(nullptr, &c), -EINVAL);
	EXPECT_EQ(kvmmu_get_module_stats(nullptr), -EINVAL);
}

// A fresh VM per test, and a check that each hook moves exactly the
// counters it should.
class VmHooksTest : public HostTest {
protected:
	void SetUp() override
	{
		HostTest::SetUp();
		ASSERT_EQ(kvmmu_vm_create(0, &vm), 0);
		before = counters();
	}

	void TearDown() override
	{
		kvmmu_vm_destroy(vm);
		HostTest::TearDown();
	}

	kvmmu_vm_counters counters()
	{
		kvmmu_vm_counters c{};

		EXPECT_EQ(kvmmu_vm_get_counters(vm, &c), 0);
		return c;
	}

	// Since the last check, @moved went up by @n and nothing else moved.
	void expect_moved(Counter moved, uint64_t n = 1)
	{
		const kvmmu_vm_counters now = counters();

		for (Counter f : kAllCounters)
			EXPECT_EQ(now.*f, before.*f + (f == moved ? n : 0));
		before = now;
	}

	void expect_unchanged() { expect_moved(nullptr, 0); }

	kvmmu_vm *vm = nullptr;
	kvmmu_vm_counters before{};
};

TEST_F(VmHooksTest, GetCountersNullOut)
{
	EXPECT_EQ(kvmmu_vm_get_counters(vm, nullptr), -EINVAL);
}

TEST_F(VmHooksTest, InvalidatePair)
{
	EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x3000, true), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_start);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x3000), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_end);
}

TEST_F(VmHooksTest, InvalidateNonBlockable)
{
	EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x2000, false), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_start);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_end);
}

TEST_F(VmHooksTest, InvalidateBadRange)
{
	for (bool blockable : {true, false}) {
		EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x2000, 0x2000, blockable), -EINVAL);
		EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x3000, 0x2000, blockable), -EINVAL);
		EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, ~0ull, 0, blockable), -EINVAL);
	}
	expect_unchanged();

	// A bad end is refused even with an invalidation in flight.
	ASSERT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x2000, true), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_start);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x2000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x2000, 0x1000), -EINVAL);
	expect_unchanged();
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_end);
}

TEST_F(VmHooksTest, EndWithoutStart)
{
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000), -EINVAL);
	expect_unchanged();
}

TEST_F(VmHooksTest, NestedInvalidations)
{
	EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x5000, true), 0);
	EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x3000, 0x8000, false), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_start, 2);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x3000, 0x8000), 0);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x5000), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_end, 2);
	// Both ended: one more end is unpaired.
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x5000), -EINVAL);
	expect_unchanged();
}

TEST_F(VmHooksTest, YoungHooks)
{
	EXPECT_EQ(kvmmu_vm_clear_flush_young(vm, 0x1000, 0x2000), 0);
	expect_moved(&kvmmu_vm_counters::clear_flush_young);
	EXPECT_EQ(kvmmu_vm_clear_young(vm, 0x1000, 0x2000), 0);
	expect_moved(&kvmmu_vm_counters::clear_young);
	EXPECT_EQ(kvmmu_vm_test_young(vm, 0x1000), 0);
	expect_moved(&kvmmu_vm_counters::test_young);
}

TEST_F(VmHooksTest, YoungHooksBadRange)
{
	EXPECT_EQ(kvmmu_vm_clear_flush_young(vm, 0x2000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_clear_flush_young(vm, 0x2000, 0x1000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_clear_young(vm, 0x2000, 0x2000), -EINVAL);
	EXPECT_EQ(kvmmu_vm_clear_young(vm, 0x2000, 0x1000), -EINVAL);
	expect_unchanged();
}

TEST_F(VmHooksTest, ChangePte)
{
	EXPECT_EQ(kvmmu_vm_change_pte(vm, 0x7f0000001000), 0);
	expect_moved(&kvmmu_vm_counters::change_pte);
}

TEST_F(VmHooksTest, Release)
{
	EXPECT_EQ(kvmmu_vm_release(vm), 0);
	expect_moved(&kvmmu_vm_counters::release);

	// Invalidations are still accepted after release.
	EXPECT_EQ(kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x2000, true), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_start);
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000), 0);
	expect_moved(&kvmmu_vm_counters::invalidate_range_end);
}

// The TSan target: concurrent paired invalidations on one VM.
TEST_F(VmHooksTest, ConcurrentInvalidations)
{
	constexpr int kThreads = 4, kPairs = 10000;
	std::atomic<int> failures{0};
	std::vector<std::thread> threads;

	for (int t = 0; t < kThreads; t++) {
		threads.emplace_back([&, t] {
			const uint64_t start = 0x100000 * (t + 1), end = start + 0x4000;

			for (int i = 0; i < kPairs; i++) {
				if (kvmmu_vm_invalidate_range_start(vm, start, end, i % 2) ||
				    kvmmu_vm_invalidate_range_end(vm, start, end))
					failures++;
			}
		});
	}
	for (auto &t : threads)
		t.join();

	EXPECT_EQ(failures.load(), 0);
	const kvmmu_vm_counters c = counters();
	EXPECT_EQ(c.invalidate_range_start, uint64_t(kThreads) * kPairs);
	EXPECT_EQ(c.invalidate_range_end, uint64_t(kThreads) * kPairs);
	// Nothing left in flight: one more end is unpaired.
	EXPECT_EQ(kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000), -EINVAL);
	before = c;
	expect_unchanged();
}

} // namespace
