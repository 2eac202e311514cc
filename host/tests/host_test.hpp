// SPDX-License-Identifier: GPL-2.0
// Common fixture of the host tests: every test gives back everything it
// allocated through kvmmu_plat_kmalloc(), and leaves fault injection off.
#pragma once

#include <gtest/gtest.h>

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
