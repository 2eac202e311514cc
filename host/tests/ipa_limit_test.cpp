// SPDX-License-Identifier: GPL-2.0
// Host tests of the VM's guest physical address limit (issue 10, defect
// 11): what kvmmu_vm_gpa_bits() reports is what the stage-2 format
// translates, and SET_USER_MEMORY_REGION, PRE_FAULT, TRANSLATE and
// GPA_ACCESS refuse a range reaching it by the same rule. Also the
// documented order of errors when both the guest range and the user
// buffer are bad, and dirty bits following a slot that moves.
#include <errno.h>
#include <string.h>

#include <vector>

#include <kvmmu/hooks.h>

#include "../../mmu/vm.hpp"
#include "host_test.hpp"

namespace {

constexpr uint64_t kPage = uint64_t(1) << kvmmu::kPageShift;
// A user address no copy reaches (host/platform.cpp: below one page).
constexpr uint64_t kBadBuf = 8;

class IpaLimitTest : public HostVmTest {
protected:
	static constexpr uint64_t kHva = 0x40000000;
	static constexpr uint64_t kPages = 8;

	void SetUp() override
	{
		HostVmTest::SetUp();
		if (HasFatalFailure())
			return;
		ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, 2 * kPages * kPage, KVMMU_HOST_MAP_WRITE), 0);
		const int bits = kvmmu_vm_gpa_bits(vm_);
		ASSERT_GT(bits, 0);
		ASSERT_LT(bits, 64);
		lim_ = uint64_t(1) << bits;
	}

	kvmmu::Vm *cxx() { return reinterpret_cast<kvmmu::Vm *>(vm_); }

	int slot(uint32_t id, uint64_t gpa, uint64_t size, uint64_t hva = kHva, uint32_t flags = 0)
	{
		kvmmu_memory_region r{id, flags, gpa, size, hva};
		return kvmmu_vm_set_memory_region(vm_, &r);
	}

	int translate(uint64_t gpa, kvmmu_leaf_info *l)
	{
		*l = {};
		return kvmmu_vm_translate(vm_, gpa, l);
	}

	bool mapped(uint64_t gpa)
	{
		kvmmu_leaf_info l;
		EXPECT_EQ(translate(gpa, &l), 0);
		return l.mapped;
	}

	int access(uint64_t gpa, uint64_t len, uint64_t buf, bool write)
	{
		return kvmmu_vm_access(vm_, gpa, len, buf, write);
	}

	uint8_t *host(uint64_t hva) { return static_cast<uint8_t *>(kvmmu_host_mm_page(mm_, hva)); }

	uint64_t lim_ = 0;
};

TEST_F(IpaLimitTest, BitsAreTheStage2Formats)
{
	EXPECT_EQ(unsigned(kvmmu_vm_gpa_bits(vm_)), kvmmu::S2Format::ia_bits);
	EXPECT_EQ(cxx()->gpa_bits(), kvmmu::S2Format::ia_bits);
	EXPECT_EQ(cxx()->gpa_limit(), kvmmu::Vm::Pt::kIaLimit);
	EXPECT_EQ(kvmmu_vm_gpa_bits(nullptr), -EINVAL);
#if defined(__x86_64__)
	EXPECT_EQ(kvmmu_vm_gpa_bits(vm_), 48); // 4-level EPT
#endif
}

TEST_F(IpaLimitTest, RangeCheck)
{
	kvmmu::Vm *v = cxx();
	EXPECT_TRUE(v->gpa_range_ok(0, lim_));
	EXPECT_TRUE(v->gpa_range_ok(lim_ - kPage, kPage));
	EXPECT_TRUE(v->gpa_range_ok(lim_ - 1, 1));
	EXPECT_FALSE(v->gpa_range_ok(lim_ - kPage, kPage + 1));
	EXPECT_FALSE(v->gpa_range_ok(lim_, 1));
	EXPECT_FALSE(v->gpa_range_ok(lim_, 0));
	EXPECT_FALSE(v->gpa_range_ok(0, lim_ + 1));
	EXPECT_FALSE(v->gpa_range_ok(~uint64_t(0), 1));
	EXPECT_FALSE(v->gpa_range_ok(lim_ - kPage, ~uint64_t(0))); // no wrap-around
}

TEST_F(IpaLimitTest, SlotsUpToTheLimitOnly)
{
	EXPECT_EQ(slot(0, lim_ - kPages * kPage, kPages * kPage), 0); // ends exactly at it
	EXPECT_EQ(slot(1, lim_ - kPage, 2 * kPage, kHva + kPages * kPage), -EINVAL); // crosses
	EXPECT_EQ(slot(1, lim_, kPage, kHva + kPages * kPage), -EINVAL);	      // starts at it
	EXPECT_EQ(slot(1, lim_ + kPage, kPage, kHva + kPages * kPage), -EINVAL);
	// A move across or beyond it is refused and leaves the slot in place.
	EXPECT_EQ(slot(0, lim_ - (kPages - 1) * kPage, kPages * kPage), -EINVAL);
	EXPECT_EQ(slot(0, lim_, kPages * kPage), -EINVAL);
	uint8_t b = 0;
	EXPECT_EQ(access(lim_ - kPage, 1, uintptr_t(&b), false), 0);
	EXPECT_EQ(access(lim_ - 2 * kPage, 1, uintptr_t(&b), false), 0);
	// Deleting needs no range.
	EXPECT_EQ(slot(0, 0, 0), 0);
	EXPECT_EQ(access(lim_ - kPage, 1, uintptr_t(&b), false), -ENOENT);
}

TEST_F(IpaLimitTest, PreFaultTranslateAccessAtTheLimit)
{
	ASSERT_EQ(slot(0, lim_ - kPages * kPage, kPages * kPage), 0);
	kvmmu_leaf_info l;
	// Crossing the limit: refused before anything is faulted.
	EXPECT_EQ(kvmmu_vm_pre_fault(vm_, lim_ - kPage, 2 * kPage, 0), -EINVAL);
	EXPECT_FALSE(mapped(lim_ - kPage));
	EXPECT_EQ(kvmmu_vm_pre_fault(vm_, lim_, kPage, 0), -EINVAL);
	EXPECT_EQ(kvmmu_vm_pre_fault(vm_, lim_ - kPage, kPage, KVMMU_FAULT_WRITE), 0);
	EXPECT_TRUE(mapped(lim_ - kPage));
	EXPECT_EQ(translate(lim_ - 1, &l), 0);
	EXPECT_TRUE(l.mapped);
	EXPECT_EQ(l.pfn, kvmmu_host_mm_pfn(mm_, kHva + (kPages - 1) * kPage));
	EXPECT_EQ(translate(lim_, &l), -EINVAL);
	EXPECT_EQ(translate(~uint64_t(0), &l), -EINVAL);

	host(kHva + kPages * kPage - 8)[0] = 0x5a;
	uint8_t buf[16] = {};
	EXPECT_EQ(access(lim_ - 8, 8, uintptr_t(buf), false), 0);
	EXPECT_EQ(buf[0], 0x5a);
	memset(buf, 0xa5, sizeof(buf));
	EXPECT_EQ(access(lim_ - 8, 16, uintptr_t(buf), true), -EINVAL);
	EXPECT_EQ(host(kHva + kPages * kPage - 8)[0], 0x5a); // nothing written
	EXPECT_EQ(access(lim_, 8, uintptr_t(buf), false), -EINVAL);
	EXPECT_EQ(access(~uint64_t(0) - 7, 8, uintptr_t(buf), false), -EINVAL);
}

TEST_F(IpaLimitTest, GuestSideErrorsWinOverABadBuffer)
{
	const uint64_t g = uint64_t(1) << 30, ro = g + (uint64_t(1) << 20), nowhere = 3ull << 30;
	ASSERT_EQ(slot(0, g, kPages * kPage), 0);
	ASSERT_EQ(slot(1, ro, kPages * kPage, kHva + kPages * kPage, KVMMU_MEMSLOT_READONLY), 0);
	for (bool write : { false, true }) {
		SCOPED_TRACE(write ? "write" : "read");
		EXPECT_EQ(access(lim_, 8, kBadBuf, write), -EINVAL);
		EXPECT_EQ(access(nowhere, 8, kBadBuf, write), -ENOENT);
		EXPECT_EQ(access(g + kPages * kPage - 8, 16, kBadBuf, write), -ENOENT);
		EXPECT_EQ(access(g, 8, kBadBuf, write), -EFAULT);
		EXPECT_EQ(access(g, 8, ~uint64_t(0) - 3, write), -EINVAL); // buf + len wraps
	}
	EXPECT_EQ(access(ro, 8, kBadBuf, true), -EPERM);
	EXPECT_EQ(access(ro, 8, kBadBuf, false), -EFAULT);
	// The first page of the range in address order decides: a hole
	// before a read-only slot is ENOENT, a read-only slot before a hole
	// EPERM.
	uint8_t buf[2 * 4096 * 16] = {};
	ASSERT_LE(2 * kPage, sizeof(buf));
	EXPECT_EQ(access(ro - kPage, 2 * kPage, uintptr_t(buf), true), -ENOENT);
	EXPECT_EQ(access(ro + (kPages - 1) * kPage, 2 * kPage, uintptr_t(buf), true), -EPERM);

	// Found before any page is accessed: nothing written, nothing mapped.
	memset(buf, 0xc3, sizeof(buf));
	EXPECT_EQ(access(g + kPages * kPage - 8, 16, uintptr_t(buf), true), -ENOENT);
	EXPECT_EQ(host(kHva + kPages * kPage - 8)[0], 0);
	EXPECT_FALSE(mapped(g + kPages * kPage - 8));
	EXPECT_EQ(access(g, 8, kBadBuf, true), -EFAULT);
	EXPECT_FALSE(mapped(g));
}

TEST_F(IpaLimitTest, DirtyLogSlotWinsOverABadBuffer)
{
	const uint64_t g = uint64_t(1) << 30;
	ASSERT_EQ(slot(0, g, kPages * kPage, kHva, KVMMU_MEMSLOT_LOG_DIRTY_PAGES), 0);
	ASSERT_EQ(slot(1, g + kPages * kPage, kPages * kPage, kHva + kPages * kPage), 0);
	uint8_t b = 1;
	ASSERT_EQ(access(g + 2 * kPage, 1, uintptr_t(&b), true), 0);
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 7, kBadBuf), -ENOENT); // no such slot
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 1, kBadBuf), -ENOENT); // not logging
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 0, kBadBuf), -EFAULT);
	uint64_t log = 0;
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 0, uintptr_t(&log)), 1); // the bit was kept
	EXPECT_EQ(log, 1u << 2);
}

TEST_F(IpaLimitTest, DirtyBitsFollowAMovedSlot)
{
	const uint64_t g = uint64_t(1) << 30;
	ASSERT_EQ(slot(0, g, kPages * kPage, kHva, KVMMU_MEMSLOT_LOG_DIRTY_PAGES), 0);
	uint8_t b = 1;
	ASSERT_EQ(access(g + 1 * kPage, 1, uintptr_t(&b), true), 0);
	ASSERT_EQ(access(g + 5 * kPage + 9, 1, uintptr_t(&b), true), 0);
	// To the very end of guest physical space, logging kept on.
	const uint64_t to = lim_ - kPages * kPage;
	ASSERT_EQ(slot(0, to, kPages * kPage, kHva, KVMMU_MEMSLOT_LOG_DIRTY_PAGES), 0);
	EXPECT_FALSE(mapped(g + 1 * kPage));
	uint64_t log = 0;
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 0, uintptr_t(&log)), 2);
	EXPECT_EQ(log, (1u << 1) | (1u << 5));
	// The log goes on at the new place.
	ASSERT_EQ(access(lim_ - 1, 1, uintptr_t(&b), true), 0);
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 0, uintptr_t(&log)), 1);
	EXPECT_EQ(log, 1u << (kPages - 1));
}

} // namespace
