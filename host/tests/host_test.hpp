// SPDX-License-Identifier: GPL-2.0
// Common fixture of the host tests: every test gives back everything it
// allocated through kvmmu_plat_kmalloc(), and leaves fault injection off.
#pragma once

#include <gtest/gtest.h>

#include <kvmmu/hooks.h>
#include <kvmmu_host.h>

class HostTest : public ::testing::Test {
protected:
	void SetUp() override { live_allocs_ = kvmmu_host_live_allocs(); }

	void TearDown() override
	{
		kvmmu_host_fail_alloc_reset();
		EXPECT_EQ(kvmmu_host_live_allocs(), live_allocs_) << "kmalloc'ed memory leaked";
	}

private:
	long live_allocs_ = 0;
};

// A VM over a fresh fake host address space (host/platform.cpp) that is
// current while the test runs; the test must give back every page
// reference it took. Leaves signals and the GUP hook as it found them.
class HostVmTest : public HostTest {
protected:
	void SetUp() override
	{
		HostTest::SetUp();
		refs_ = kvmmu_host_pfn_refs_total();
		mm_ = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm_);
		ASSERT_EQ(kvmmu_vm_create(0, &vm_), 0);
	}

	void TearDown() override
	{
		kvmmu_vm_destroy(vm_); // NULL if the test destroyed it itself
		kvmmu_host_set_current_mm(nullptr);
		kvmmu_host_set_signal_pending(false);
		kvmmu_host_set_gup_hook(nullptr, nullptr);
		EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_) << "page references leaked";
		kvmmu_host_mm_destroy(mm_);
		HostTest::TearDown();
	}

	kvmmu_host_mm *mm_ = nullptr;
	kvmmu_vm *vm_ = nullptr;
	long refs_ = 0;
};
