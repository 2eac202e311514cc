// SPDX-License-Identifier: GPL-2.0
// Device memory through ordinary memslots (seed 004, issue 12): the
// stage-2 memory type follows the host mapping's, and guest accesses reach
// device memory as single naturally aligned accesses of their size.
#include <string.h>

#include <kvmmu/hooks.h>
#include <kvmmu/platform.h>

#include "host_test.hpp"

namespace {

class PassthroughTest : public HostTest {
protected:
	static constexpr uint64_t kHva = 0x40000000;
	static constexpr uint64_t kGpa = 0x80000000;
	static constexpr uint64_t kPage = 4096;
	static constexpr uint64_t kSize = 16 * kPage;

	void SetUp() override
	{
		HostTest::SetUp();
		mm_ = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm_);
		ASSERT_EQ(kvmmu_vm_create(0, &vm_), 0);
		kvmmu_host_mmio_log_reset();
	}

	void TearDown() override
	{
		kvmmu_vm_destroy(vm_);
		kvmmu_host_set_current_mm(nullptr);
		EXPECT_EQ(kvmmu_host_ioremaps(), 0) << "ioremap without iounmap";
		EXPECT_EQ(kvmmu_host_long_maps(), 0) << "memremap without memunmap";
		kvmmu_host_mm_destroy(mm_);
		HostTest::TearDown();
	}

	// A BAR-like mapping: VM_IO|VM_PFNMAP with the given memory type.
	void bar(unsigned type_flags, uint64_t hva = kHva, uint64_t gpa = kGpa, uint32_t id = 0)
	{
		ASSERT_EQ(kvmmu_host_mm_map(mm_, hva, kSize,
					    KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_PFNMAP | type_flags),
			  0);
		kvmmu_memory_region r{id, 0, gpa, kSize, hva};
		ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	}

	kvmmu_leaf_info leaf(uint64_t gpa)
	{
		kvmmu_leaf_info l{};
		EXPECT_EQ(kvmmu_vm_translate(vm_, gpa, &l), 0);
		return l;
	}

	int access(uint64_t gpa, void *buf, uint64_t len, bool write)
	{
		return kvmmu_vm_access(vm_, gpa, len, reinterpret_cast<uintptr_t>(buf), write);
	}

	std::vector<kvmmu_host_mmio> log()
	{
		kvmmu_host_mmio l[64];
		unsigned n = 0;
		kvmmu_host_mmio_log(l, 64, &n);
		return std::vector<kvmmu_host_mmio>(l, l + (n < 64 ? n : 64));
	}

	uint64_t pa(uint64_t hva) { return kvmmu_host_mm_pfn(mm_, hva) * kPage + hva % kPage; }

	kvmmu_host_mm *mm_ = nullptr;
	kvmmu_vm *vm_ = nullptr;
};

// The host mapping's memory type decides the leaf's; none is executable.
TEST_F(PassthroughTest, MemoryTypeFollowsTheHostMapping)
{
	struct {
		unsigned flags;
		uint32_t mt;
	} cases[] = {
		{0, KVMMU_LEAF_MT_DEVICE},
		{KVMMU_HOST_MAP_WC, KVMMU_LEAF_MT_NORMAL_NC},
		{KVMMU_HOST_MAP_CACHED, KVMMU_LEAF_MT_NORMAL_WB},
	};
	uint32_t id = 0;
	for (auto &c : cases) {
		const uint64_t hva = kHva + id * kSize, gpa = kGpa + id * kSize;
		bar(c.flags, hva, gpa, id++);
		kvmmu_fault_info fi{};
		ASSERT_EQ(kvmmu_vm_fault(vm_, gpa, KVMMU_FAULT_WRITE, &fi), 0);
		kvmmu_leaf_info l = leaf(gpa);
		EXPECT_TRUE(l.mapped);
		EXPECT_EQ(l.memtype, c.mt) << c.flags;
		EXPECT_EQ(l.prot, KVMMU_LEAF_PROT_READ | KVMMU_LEAF_PROT_WRITE) << "never executable";
		EXPECT_EQ(kvmmu_vm_fault(vm_, gpa, KVMMU_FAULT_EXEC, &fi), -EPERM);
	}
}

// Each guest access is one device access of its size, in order.
TEST_F(PassthroughTest, EachAccessReachesTheDeviceOnceWithItsSize)
{
	bar(0);
	const uint64_t base = pa(kHva + kPage);
	memset(kvmmu_host_mm_page(mm_, kHva + kPage), 0, kPage);
	uint64_t v = 0x1122334455667788ull, r = 0;
	ASSERT_EQ(access(kGpa + kPage + 0x18, &v, 8, true), 0);
	ASSERT_EQ(access(kGpa + kPage + 0x18, &r, 8, false), 0);
	EXPECT_EQ(r, v);
	uint32_t w = 0xdeadbeef, wr = 0;
	ASSERT_EQ(access(kGpa + kPage + 0x20, &w, 4, true), 0);
	ASSERT_EQ(access(kGpa + kPage + 0x20, &wr, 4, false), 0);
	EXPECT_EQ(wr, w);
	uint16_t h = 0xabcd, hr = 0;
	ASSERT_EQ(access(kGpa + kPage + 0x2, &h, 2, true), 0);
	ASSERT_EQ(access(kGpa + kPage + 0x2, &hr, 2, false), 0);
	EXPECT_EQ(hr, h);
	uint8_t b = 0x5a, br = 0;
	ASSERT_EQ(access(kGpa + kPage + 0x7, &b, 1, true), 0);
	ASSERT_EQ(access(kGpa + kPage + 0x7, &br, 1, false), 0);
	EXPECT_EQ(br, b);
	auto l = log();
	ASSERT_EQ(l.size(), 8u);
	const struct {
		uint64_t off;
		unsigned size;
		bool write;
	} want[] = {{0x18, 8, true}, {0x18, 8, false}, {0x20, 4, true}, {0x20, 4, false},
		    {0x2, 2, true},  {0x2, 2, false},  {0x7, 1, true},  {0x7, 1, false}};
	for (unsigned i = 0; i < 8; i++) {
		EXPECT_EQ(l[i].pa, base + want[i].off) << i;
		EXPECT_EQ(l[i].size, want[i].size) << i;
		EXPECT_EQ(l[i].write, want[i].write) << i;
		EXPECT_FALSE(l[i].wc) << i;
	}
}

// Other sizes, or unaligned accesses, are refused before the device sees
// anything; so is a device access that is not the end of the request.
TEST_F(PassthroughTest, OddOrUnalignedDeviceAccessesAreEinvalAndTouchNothing)
{
	bar(0);
	char buf[32] = {};
	const struct {
		uint64_t off, len;
	} bad[] = {{0, 3}, {0, 16}, {0, 5}, {1, 2}, {2, 4}, {4, 8}, {kPage - 4, 8}};
	for (auto &x : bad) {
		EXPECT_EQ(access(kGpa + x.off, buf, x.len, false), -EINVAL) << x.off << "+" << x.len;
		EXPECT_EQ(access(kGpa + x.off, buf, x.len, true), -EINVAL) << x.off << "+" << x.len;
	}
	EXPECT_TRUE(log().empty());
}

// A write-combining mapping is accessed through a write-combining I/O
// mapping; a cacheable one outside the kernel's map through memremap.
TEST_F(PassthroughTest, TheIoMappingHasTheLeafsType)
{
	bar(KVMMU_HOST_MAP_WC);
	uint32_t v = 7;
	ASSERT_EQ(access(kGpa, &v, 4, true), 0);
	auto l = log();
	ASSERT_EQ(l.size(), 1u);
	EXPECT_TRUE(l[0].wc);
}

// The BAR unmapped: the leaf is gone and accesses fault like any other.
TEST_F(PassthroughTest, UnmappedBarFaultsThroughTheNormalPath)
{
	bar(0);
	uint32_t v = 1;
	ASSERT_EQ(access(kGpa, &v, 4, true), 0);
	ASSERT_EQ(kvmmu_vm_invalidate_range_start(vm_, kHva, kHva + kSize, true), 0);
	kvmmu_host_mm_unmap(mm_, kHva, kSize);
	ASSERT_EQ(kvmmu_vm_invalidate_range_end(vm_, kHva, kHva + kSize), 0);
	EXPECT_FALSE(leaf(kGpa).mapped);
	kvmmu_host_mmio_log_reset();
	EXPECT_EQ(access(kGpa, &v, 4, false), -EFAULT);
	EXPECT_TRUE(log().empty());
}

// A request over several pages that reaches device memory is refused
// before any page is accessed: the RAM before the BAR is not written.
TEST_F(PassthroughTest, RequestsCrossingIntoDeviceMemoryTouchNothing)
{
	const uint64_t ram_hva = kHva + 64 * kSize;
	ASSERT_EQ(kvmmu_host_mm_map(mm_, ram_hva, kSize, KVMMU_HOST_MAP_WRITE), 0);
	kvmmu_memory_region r{1, 0, kGpa - kSize, kSize, ram_hva};
	ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	bar(0); // right after the RAM slot
	uint64_t v = ~0ull;
	uint8_t buf[64];
	memset(buf, 0xee, sizeof(buf));
	EXPECT_EQ(access(kGpa - 4, &v, 8, true), -EINVAL);
	for (uint64_t len : {8ull, 16ull, 64ull}) {
		EXPECT_EQ(access(kGpa - len / 2, buf, len, true), -EINVAL) << len;
		EXPECT_EQ(access(kGpa - len / 2, buf, len, false), -EINVAL) << len;
	}
	EXPECT_TRUE(log().empty());
	uint8_t last[32];
	memcpy(last, static_cast<uint8_t *>(kvmmu_host_mm_page(mm_, ram_hva + kSize - kPage)) + kPage - 32, 32);
	for (uint8_t x : last)
		EXPECT_EQ(x, 0) << "RAM before the BAR was written";
	// Within the RAM slot, any size goes as before.
	EXPECT_EQ(access(kGpa - 64, buf, 64, true), 0);
}

// The KVM core's hook: one access with a kernel buffer, RAM or device.
TEST_F(PassthroughTest, MmioAccessHookTakesAKernelBuffer)
{
	bar(0);
	const uint64_t ram_hva = kHva + 64 * kSize;
	ASSERT_EQ(kvmmu_host_mm_map(mm_, ram_hva, kSize, KVMMU_HOST_MAP_WRITE), 0);
	kvmmu_memory_region r{1, 0, kGpa - kSize, kSize, ram_hva};
	ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	uint32_t v = 0xfeedf00d, back = 0;
	ASSERT_EQ(kvmmu_vm_mmio_access(vm_, kGpa + 0x40, 4, &v, true), 0);
	ASSERT_EQ(kvmmu_vm_mmio_access(vm_, kGpa + 0x40, 4, &back, false), 0);
	EXPECT_EQ(back, v);
	auto l = log();
	ASSERT_EQ(l.size(), 2u);
	EXPECT_EQ(l[0].size, 4u);
	EXPECT_TRUE(l[0].write);
	// RAM: copied, not logged as MMIO.
	uint64_t q = 0x0102030405060708ull, qb = 0;
	ASSERT_EQ(kvmmu_vm_mmio_access(vm_, kGpa - 8, 8, &q, true), 0);
	ASSERT_EQ(kvmmu_vm_mmio_access(vm_, kGpa - 8, 8, &qb, false), 0);
	EXPECT_EQ(qb, q);
	EXPECT_EQ(log().size(), 2u);
	// Bad arguments, no slot.
	EXPECT_EQ(kvmmu_vm_mmio_access(vm_, kGpa + 2, 4, &v, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_mmio_access(vm_, kGpa, 3, &v, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_mmio_access(vm_, kGpa, 16, &v, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_mmio_access(vm_, kGpa, 4, nullptr, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_mmio_access(nullptr, kGpa, 4, &v, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_mmio_access(vm_, kGpa + 8 * kSize, 4, &v, false), -ENOENT);
	EXPECT_EQ(log().size(), 2u);
}

// Block leaves for device memory: a block-aligned range of a BAR that
// the host maps to physically contiguous pfns with the same attributes
// takes one block leaf; anything else takes base pages.
class PassthroughBlockTest : public PassthroughTest {
protected:
	static constexpr uint64_t kHuge = 2 << 20;
	static constexpr uint64_t kBar = 2 * kHuge;

	// A contiguous BAR (HUGE: 2M-aligned physically contiguous chunks).
	void bar2m(uint64_t gpa, unsigned extra = 0)
	{
		ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, kBar,
					    KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_PFNMAP | KVMMU_HOST_MAP_HUGE | extra),
			  0);
		kvmmu_memory_region r{0, 0, gpa, kBar, kHva};
		ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	}

	kvmmu_leaf_info faulted(uint64_t gpa)
	{
		kvmmu_fault_info fi{};
		EXPECT_EQ(kvmmu_vm_fault(vm_, gpa, KVMMU_FAULT_WRITE, &fi), 0);
		return leaf(gpa);
	}
};

TEST_F(PassthroughBlockTest, ContiguousAlignedBarTakesBlockLeaves)
{
	bar2m(kGpa);
	kvmmu_leaf_info l = faulted(kGpa + kHuge + 5 * kPage);
	EXPECT_EQ(l.size, kHuge);
	EXPECT_EQ(l.level, 1u);
	EXPECT_EQ(l.memtype, unsigned(KVMMU_LEAF_MT_DEVICE));
	EXPECT_EQ(l.prot, KVMMU_LEAF_PROT_READ | KVMMU_LEAF_PROT_WRITE);
	EXPECT_EQ(l.pfn, kvmmu_host_mm_pfn(mm_, kHva + kHuge + 5 * kPage));
	// Accesses through the block reach the right device address.
	uint32_t v = 0x600dcafe;
	ASSERT_EQ(access(kGpa + kHuge + 7 * kPage + 0x10, &v, 4, true), 0);
	auto lg = log();
	ASSERT_EQ(lg.size(), 1u);
	EXPECT_EQ(lg[0].pa, kvmmu_host_mm_pfn(mm_, kHva + kHuge + 7 * kPage) * kPage + 0x10);
	// Any invalidation inside the block takes the whole leaf.
	ASSERT_EQ(kvmmu_vm_invalidate_range_start(vm_, kHva + kHuge + 9 * kPage, kHva + kHuge + 10 * kPage, true), 0);
	ASSERT_EQ(kvmmu_vm_invalidate_range_end(vm_, kHva + kHuge + 9 * kPage, kHva + kHuge + 10 * kPage), 0);
	EXPECT_FALSE(leaf(kGpa + kHuge).mapped);
	EXPECT_FALSE(leaf(kGpa + kHuge + 5 * kPage).mapped);
}

TEST_F(PassthroughBlockTest, MisalignedGpaTakesBasePages)
{
	bar2m(kGpa + kPage);
	kvmmu_leaf_info l = faulted(kGpa + kHuge + 5 * kPage);
	EXPECT_EQ(l.size, kPage);
}

TEST_F(PassthroughBlockTest, ADifferentPageInsideTakesBasePages)
{
	bar2m(kGpa);
	kvmmu_host_mm_replace_page(mm_, kHva + kHuge + 100 * kPage); // not contiguous any more
	EXPECT_EQ(faulted(kGpa + kHuge + 5 * kPage).size, kPage);
	EXPECT_EQ(faulted(kGpa + 5 * kPage).size, kHuge); // the other block is whole
}

TEST_F(PassthroughBlockTest, MixedWritabilityTakesBasePages)
{
	bar2m(kGpa);
	// (The fake's protect() also makes the VMA read-only: read faults.)
	kvmmu_host_mm_protect(mm_, kHva + kHuge + 3 * kPage, kPage, false);
	kvmmu_fault_info fi{};
	ASSERT_EQ(kvmmu_vm_fault(vm_, kGpa + kHuge + 5 * kPage, 0, &fi), 0);
	EXPECT_EQ(leaf(kGpa + kHuge + 5 * kPage).size, kPage);
	ASSERT_EQ(kvmmu_vm_fault(vm_, kGpa + 5 * kPage, 0, &fi), 0);
	EXPECT_EQ(leaf(kGpa + 5 * kPage).size, kHuge); // all writable there
}

TEST_F(PassthroughBlockTest, NonContiguousBarTakesBasePages)
{
	bar(0); // separately allocated fake pages
	kvmmu_fault_info fi{};
	ASSERT_EQ(kvmmu_vm_fault(vm_, kGpa, KVMMU_FAULT_WRITE, &fi), 0);
	EXPECT_EQ(leaf(kGpa).size, kPage);
}

} // namespace
