// SPDX-License-Identifier: GPL-2.0
// Host tests of the hooks a KVM core uses when its CPUs walk kvmmu's
// stage-2 table (kvmmu_vm_attach_core() and friends, docs/kvm.md): the
// core's TLB callback is told exactly the ranges whose entries changed,
// cache maintenance happens before a leaf is published (never after),
// exec is granted lazily, faults the core logs map base pages read-only,
// and an access-flag fault makes an old leaf young again.
#include <errno.h>

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <kvmmu/hooks.h>

#include "host_test.hpp"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kHuge = 2 << 20;

struct Range {
	uint64_t start, size;
	bool operator==(const Range &o) const { return start == o.start && size == o.size; }
};

std::ostream &operator<<(std::ostream &os, const Range &r)
{
	return os << "[" << std::hex << r.start << "+" << r.size << std::dec << ")";
}

// What the core saw, in order. A maintenance callback also records whether
// the guest page it cleans was mapped (and how) at that moment.
struct Maint {
	uint64_t gpa;
	bool dcache;		// else icache
	bool mapped;
	uint32_t prot;
};

class CoreHooksTest : public HostVmTest {
protected:
	static constexpr uint64_t kHva = 0x40000000;
	static constexpr uint64_t kGpa = 0x80000000;
	static constexpr uint64_t kSize = 8 * kHuge;

	static void flush_range(void *ctx, uint64_t gpa, uint64_t size, int level)
	{
		auto *t = static_cast<CoreHooksTest *>(ctx);
		t->flushes_.push_back({gpa, size});
		t->levels_.push_back(level);
	}
	static void flush_all(void *ctx) { static_cast<CoreHooksTest *>(ctx)->flush_alls_++; }
	static void dcache(void *ctx, void *va, uint64_t size) { static_cast<CoreHooksTest *>(ctx)->maint(va, size, true); }
	static void icache(void *ctx, void *va, uint64_t size) { static_cast<CoreHooksTest *>(ctx)->maint(va, size, false); }

	void maint(void *va, uint64_t size, bool d)
	{
		EXPECT_EQ(size, kPage);
		auto it = gpa_of_pfn_.find(reinterpret_cast<uintptr_t>(va) / kPage);
		ASSERT_NE(it, gpa_of_pfn_.end()) << "maintenance of a page that is not guest memory";
		// Outside kvmmu's MMU lock: the table can be read here.
		kvmmu_leaf_info l{};
		EXPECT_EQ(kvmmu_vm_translate(vm_, it->second, &l), 0);
		maints_.push_back({it->second, d, l.mapped, l.prot});
	}

	int attach(uint32_t flags, uint32_t ipa_bits = 48)
	{
		cfg_ = {flags, ipa_bits, &ops_, this};
		return kvmmu_vm_attach_core(vm_, &cfg_);
	}

	// Guest memory at kGpa backed by kHva; remembers which pfn is which gpa.
	void memory(unsigned map_flags = KVMMU_HOST_MAP_WRITE)
	{
		ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, kSize, map_flags), 0);
		kvmmu_memory_region r{0, 0, kGpa, kSize, kHva};
		ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
		for (uint64_t off = 0; off < kSize; off += kPage)
			gpa_of_pfn_[kvmmu_host_mm_pfn(mm_, kHva + off)] = kGpa + off;
	}

	int fault(uint64_t gpa, uint32_t access, kvmmu_fault_info *fi = nullptr)
	{
		kvmmu_fault_info dummy{};
		return kvmmu_vm_fault(vm_, gpa, access, fi ? fi : &dummy);
	}

	kvmmu_leaf_info leaf(uint64_t gpa)
	{
		kvmmu_leaf_info l{};
		EXPECT_EQ(kvmmu_vm_translate(vm_, gpa, &l), 0);
		return l;
	}

	const kvmmu_core_ops ops_ = {flush_range, flush_all, dcache, icache};
	kvmmu_core_config cfg_{};
	std::vector<Range> flushes_;
	std::vector<int> levels_;	// the level hint of each flush
	int flush_alls_ = 0;
	std::vector<Maint> maints_;
	std::map<uint64_t, uint64_t> gpa_of_pfn_;
};

TEST_F(CoreHooksTest, AttachRules)
{
	kvmmu_core_config c{0, 48, &ops_, this};
	EXPECT_EQ(kvmmu_vm_attach_core(nullptr, &c), -EINVAL);
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, nullptr), -EINVAL);
	kvmmu_stage2_geometry g{};
	EXPECT_EQ(kvmmu_vm_stage2_geometry(vm_, &g), -EINVAL); // no core yet
	c.flags = 1u << 7;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EINVAL);
	c.flags = 0;
	kvmmu_core_ops partial = ops_;
	partial.icache_inval_pou = nullptr;
	c.ops = &partial;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EINVAL);
	c.ops = nullptr;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EINVAL);
	c.ops = &ops_;
	c.ipa_bits = 0;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EINVAL);
	// This host's format (x86-64 4-level EPT) walks 48 bits, no fewer,
	// and has no FWB mode.
	c.ipa_bits = 40;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EOPNOTSUPP);
	c.ipa_bits = 52;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EOPNOTSUPP);
	c.ipa_bits = 48;
	c.flags = KVMMU_CORE_FWB;
	EXPECT_EQ(kvmmu_vm_attach_core(vm_, &c), -EINVAL);
	EXPECT_EQ(kvmmu_vm_gpa_bits(vm_), 48);

	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	EXPECT_EQ(attach(KVMMU_CORE_DIC), -EBUSY);
	ASSERT_EQ(kvmmu_vm_stage2_geometry(vm_, &g), 0);
	EXPECT_NE(g.root_pa, 0u);
	EXPECT_EQ(g.root_pa % kPage, 0u);
	EXPECT_EQ(g.page_shift, 12u);
	EXPECT_EQ(g.levels, 4u);
	EXPECT_EQ(g.ipa_bits, 48u);
	EXPECT_EQ(g.concatenated, 1u);
	EXPECT_EQ(kvmmu_vm_stage2_geometry(vm_, nullptr), -EINVAL);
}

TEST_F(CoreHooksTest, AttachAfterAMemslotIsRefused)
{
	memory();
	EXPECT_EQ(attach(0), -EBUSY);
}

// The TLB callback is told exactly the ranges whose entries went: not the
// gaps between them, not less.
TEST_F(CoreHooksTest, TlbCallbackGetsExactlyTheUnmappedRanges)
{
	ASSERT_EQ(attach(0), 0);
	memory();
	for (unsigned p : {0u, 1u, 2u, 3u, 8u, 9u, 20u})
		ASSERT_EQ(fault(kGpa + p * kPage, KVMMU_FAULT_WRITE), 0) << p;
	EXPECT_TRUE(flushes_.empty()) << "mapping into empty entries needs no invalidation";

	ASSERT_EQ(kvmmu_vm_unmap(vm_, kGpa, 32 * kPage), 0);
	std::vector<Range> want = {{kGpa, 4 * kPage}, {kGpa + 8 * kPage, 2 * kPage}, {kGpa + 20 * kPage, kPage}};
	EXPECT_EQ(flushes_, want);
	// All base pages: the hint is the leaf level counted from the root
	// (4-level EPT here: 3), as arm64's TTL numbers a 4K page.
	EXPECT_EQ(levels_, std::vector<int>(3, 3));
	for (unsigned p = 0; p < 32; p++)
		EXPECT_FALSE(leaf(kGpa + p * kPage).mapped) << p;

	// An mmu-notifier invalidation: only what it removed.
	flushes_.clear();
	for (unsigned p : {2u, 3u, 4u, 9u, 30u})
		ASSERT_EQ(fault(kGpa + p * kPage, 0), 0) << p;
	ASSERT_EQ(kvmmu_vm_invalidate_range_start(vm_, kHva + 3 * kPage, kHva + 10 * kPage, true), 0);
	ASSERT_EQ(kvmmu_vm_invalidate_range_end(vm_, kHva + 3 * kPage, kHva + 10 * kPage), 0);
	want = {{kGpa + 3 * kPage, 2 * kPage}, {kGpa + 9 * kPage, kPage}};
	EXPECT_EQ(flushes_, want);
	EXPECT_TRUE(leaf(kGpa + 2 * kPage).mapped);
	EXPECT_TRUE(leaf(kGpa + 30 * kPage).mapped);

	// Write protection: only the leaves that lose the write permission.
	flushes_.clear();
	ASSERT_EQ(fault(kGpa + 5 * kPage, KVMMU_FAULT_WRITE), 0);
	ASSERT_EQ(kvmmu_vm_write_protect(vm_, kGpa, 16 * kPage, false), 0);
	want = {{kGpa + 2 * kPage, kPage}, {kGpa + 5 * kPage, kPage}};
	EXPECT_EQ(flushes_, want);
	EXPECT_FALSE(leaf(kGpa + 5 * kPage).prot & KVMMU_LEAF_PROT_WRITE);
	flushes_.clear();
	ASSERT_EQ(kvmmu_vm_write_protect(vm_, kGpa, 16 * kPage, true), 0);
	EXPECT_TRUE(flushes_.empty()) << "nothing changed: nothing to invalidate";
	EXPECT_EQ(flush_alls_, 0);
}

TEST_F(CoreHooksTest, TlbCallbackCoversWholeBlocks)
{
	ASSERT_EQ(attach(0), 0);
	memory(KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_HUGE);
	kvmmu_fault_info fi{};
	ASSERT_EQ(fault(kGpa + kHuge + 7 * kPage, 0, &fi), 0);
	ASSERT_EQ(fi.size, kHuge);
	// One page of the block: the whole block goes, and is what is told.
	ASSERT_EQ(kvmmu_vm_unmap(vm_, kGpa + kHuge + 9 * kPage, kPage), 0);
	std::vector<Range> want = {{kGpa + kHuge, kHuge}};
	EXPECT_EQ(flushes_, want);
	EXPECT_EQ(levels_, std::vector<int>(1, 2)) << "a 2M block's level";
}

// Without FWB each RAM page is cleaned to the PoC before its leaf is
// published; without DIC RAM becomes executable only on an exec fault,
// after the I-cache invalidation, which also happens before the leaf that
// grants exec is published.
TEST_F(CoreHooksTest, CacheMaintenanceBeforePublishAndLazyExec)
{
	ASSERT_EQ(attach(0), 0);
	memory();
	const uint64_t gpa = kGpa + 6 * kPage;
	ASSERT_EQ(fault(gpa, 0), 0);
	ASSERT_EQ(maints_.size(), 1u);
	EXPECT_EQ(maints_[0].gpa, gpa);
	EXPECT_TRUE(maints_[0].dcache);
	EXPECT_FALSE(maints_[0].mapped) << "cleaned after the leaf was published";
	kvmmu_leaf_info l = leaf(gpa);
	ASSERT_TRUE(l.mapped);
	EXPECT_EQ(l.prot, KVMMU_LEAF_PROT_READ | KVMMU_LEAF_PROT_WRITE) << "exec granted eagerly";

	// A write or access fault on the mapped page publishes no new memory.
	maints_.clear();
	ASSERT_EQ(fault(gpa, KVMMU_FAULT_WRITE), 0);
	EXPECT_TRUE(maints_.empty());

	// Exec on the mapped page: the I-cache only, before exec is granted.
	ASSERT_EQ(fault(gpa, KVMMU_FAULT_EXEC), 0);
	ASSERT_EQ(maints_.size(), 1u);
	EXPECT_EQ(maints_[0].gpa, gpa);
	EXPECT_FALSE(maints_[0].dcache);
	EXPECT_FALSE(maints_[0].prot & KVMMU_LEAF_PROT_EXEC) << "maintenance after exec was granted";
	EXPECT_TRUE(leaf(gpa).prot & KVMMU_LEAF_PROT_EXEC);

	// An exec fault on an unmapped page: both, before the leaf appears.
	maints_.clear();
	ASSERT_EQ(fault(gpa + kPage, KVMMU_FAULT_EXEC), 0);
	ASSERT_EQ(maints_.size(), 2u);
	for (const Maint &m : maints_)
		EXPECT_FALSE(m.mapped);
	EXPECT_TRUE(leaf(gpa + kPage).prot & KVMMU_LEAF_PROT_EXEC);
}

TEST_F(CoreHooksTest, BlockIsCleanedWholeBeforeItIsMapped)
{
	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	memory(KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_HUGE);
	kvmmu_fault_info fi{};
	ASSERT_EQ(fault(kGpa + 3 * kHuge + 11 * kPage, KVMMU_FAULT_WRITE, &fi), 0);
	ASSERT_EQ(fi.size, kHuge);
	ASSERT_EQ(maints_.size(), kHuge / kPage);
	for (size_t i = 0; i < maints_.size(); i++) {
		EXPECT_EQ(maints_[i].gpa, kGpa + 3 * kHuge + i * kPage);
		EXPECT_TRUE(maints_[i].dcache);
		EXPECT_FALSE(maints_[i].mapped);
	}
	// DIC: executable at once, no I-cache maintenance.
	EXPECT_TRUE(leaf(kGpa + 3 * kHuge).prot & KVMMU_LEAF_PROT_EXEC);
}

TEST_F(CoreHooksTest, DicGrantsExecWithoutICacheMaintenance)
{
	// (FWB, which turns the D-cache side off, has no meaning for this host's
	// format: the arm64 encoding is tested in pgtable_test.)
	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	memory();
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_EXEC), 0);
	for (const Maint &m : maints_)
		EXPECT_TRUE(m.dcache);
	EXPECT_TRUE(leaf(kGpa).prot & KVMMU_LEAF_PROT_EXEC);
}

TEST_F(CoreHooksTest, DeviceMemoryIsNeverMaintained)
{
	ASSERT_EQ(attach(0), 0);
	ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, kSize, KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_PFNMAP), 0);
	kvmmu_memory_region r{0, 0, kGpa, kSize, kHva};
	ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_WRITE), 0);
	EXPECT_TRUE(maints_.empty());
	EXPECT_EQ(fault(kGpa, KVMMU_FAULT_EXEC), -EPERM); // device memory: never executable
}

// KVMMU_FAULT_LOG: the core logs this slot: base pages, writable only on
// a write, and kvmmu keeps no log of its own for it.
TEST_F(CoreHooksTest, CoreLoggedFaultsMapBasePagesReadOnly)
{
	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	memory(KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_HUGE);
	kvmmu_fault_info fi{};
	ASSERT_EQ(fault(kGpa + 4 * kPage, KVMMU_FAULT_LOG, &fi), 0);
	EXPECT_EQ(fi.size, kPage);
	EXPECT_FALSE(fi.writable);
	EXPECT_FALSE(leaf(kGpa + 4 * kPage).prot & KVMMU_LEAF_PROT_WRITE);
	ASSERT_EQ(fault(kGpa + 4 * kPage, KVMMU_FAULT_LOG | KVMMU_FAULT_WRITE, &fi), 0);
	EXPECT_EQ(fi.size, kPage);
	EXPECT_TRUE(fi.writable);
	kvmmu_vm_mmu_stats s{};
	ASSERT_EQ(kvmmu_vm_get_mmu_stats(vm_, &s), 0);
	EXPECT_EQ(s.dirty_faults, 1u);
	EXPECT_EQ(kvmmu_vm_get_dirty_log(vm_, 0, 0), -ENOENT) << "kvmmu logs nothing itself";
	// Without the flag the same memory maps a writable block.
	ASSERT_EQ(fault(kGpa + kHuge, 0, &fi), 0);
	EXPECT_EQ(fi.size, kHuge);
	EXPECT_TRUE(fi.writable);
}

// An access-flag fault (the hardware does not set the flag itself): the
// old leaf becomes young again, in place.
TEST_F(CoreHooksTest, FaultOnAnOldLeafMakesItYoung)
{
	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	memory();
	ASSERT_EQ(fault(kGpa + 2 * kPage, KVMMU_FAULT_WRITE), 0);
	EXPECT_EQ(kvmmu_vm_clear_young(vm_, kHva, kHva + kSize), 1);
	EXPECT_EQ(kvmmu_vm_test_young(vm_, kHva + 2 * kPage), 0);
	flushes_.clear();
	ASSERT_EQ(fault(kGpa + 2 * kPage, 0), 0);
	EXPECT_EQ(kvmmu_vm_test_young(vm_, kHva + 2 * kPage), 1);
	kvmmu_leaf_info l = leaf(kGpa + 2 * kPage);
	EXPECT_TRUE(l.prot & KVMMU_LEAF_PROT_WRITE) << "rights kept";
	EXPECT_TRUE(flushes_.empty()) << "setting the accessed flag needs no break";
}

TEST_F(CoreHooksTest, UnmapAndWriteProtectCheckTheirRange)
{
	ASSERT_EQ(attach(0), 0);
	EXPECT_EQ(kvmmu_vm_unmap(nullptr, 0, kPage), -EINVAL);
	EXPECT_EQ(kvmmu_vm_unmap(vm_, 0, 0), -EINVAL);
	EXPECT_EQ(kvmmu_vm_unmap(vm_, 1, kPage), -EINVAL);
	EXPECT_EQ(kvmmu_vm_unmap(vm_, 0, kPage + 1), -EINVAL);
	EXPECT_EQ(kvmmu_vm_unmap(vm_, (1ull << 48) - kPage, 2 * kPage), -EINVAL);
	EXPECT_EQ(kvmmu_vm_unmap(vm_, 0, 1ull << 48), 0);
	EXPECT_EQ(kvmmu_vm_write_protect(nullptr, 0, kPage, true), -EINVAL);
	EXPECT_EQ(kvmmu_vm_write_protect(vm_, 0, 0, true), -EINVAL);
	EXPECT_EQ(kvmmu_vm_write_protect(vm_, kPage / 2, kPage, false), -EINVAL);
	EXPECT_EQ(kvmmu_vm_write_protect(vm_, 0, 1ull << 48, false), 0);
	EXPECT_EQ(kvmmu_vm_fault(vm_, 0, 1u << 3, nullptr), -EINVAL);
}

// After write protection the next write faults and gets the right back.
TEST_F(CoreHooksTest, WriteFaultAfterWriteProtectRestoresWrite)
{
	ASSERT_EQ(attach(KVMMU_CORE_DIC), 0);
	memory();
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_WRITE | KVMMU_FAULT_LOG), 0);
	ASSERT_EQ(kvmmu_vm_write_protect(vm_, kGpa, kPage, false), 0);
	EXPECT_FALSE(leaf(kGpa).prot & KVMMU_LEAF_PROT_WRITE);
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_LOG), 0);
	EXPECT_FALSE(leaf(kGpa).prot & KVMMU_LEAF_PROT_WRITE) << "a read of a logged page stays read-only";
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_WRITE | KVMMU_FAULT_LOG), 0);
	EXPECT_TRUE(leaf(kGpa).prot & KVMMU_LEAF_PROT_WRITE);
	kvmmu_vm_mmu_stats s{};
	ASSERT_EQ(kvmmu_vm_get_mmu_stats(vm_, &s), 0);
	EXPECT_EQ(s.dirty_faults, 2u);
}

TEST_F(CoreHooksTest, ModuleStatsSumTheCoresVms)
{
	kvmmu_module_stats before{}, after{};
	ASSERT_EQ(kvmmu_get_module_stats(&before), 0);
	ASSERT_EQ(attach(0), 0);
	memory();
	ASSERT_EQ(fault(kGpa, KVMMU_FAULT_WRITE | KVMMU_FAULT_LOG), 0);
	ASSERT_EQ(fault(kGpa + kPage, 0), 0);
	ASSERT_EQ(kvmmu_vm_unmap(vm_, kGpa, 2 * kPage), 0);
	ASSERT_EQ(kvmmu_get_module_stats(&after), 0);
	EXPECT_EQ(after.core_vms_created, before.core_vms_created + 1);
	EXPECT_EQ(after.core_vms_live, before.core_vms_live + 1);
	EXPECT_EQ(after.core_faults, before.core_faults) << "summed when the VM goes";
	kvmmu_vm_destroy(vm_);
	vm_ = nullptr;
	ASSERT_EQ(kvmmu_get_module_stats(&after), 0);
	EXPECT_EQ(after.core_vms_live, before.core_vms_live);
	EXPECT_EQ(after.core_faults, before.core_faults + 2);
	EXPECT_EQ(after.core_dirty_faults, before.core_dirty_faults + 1);
	EXPECT_EQ(after.core_tlb_flushes, before.core_tlb_flushes + 1 + 1); // the unmap, the destruction
	EXPECT_EQ(after.core_cache_maintenance, before.core_cache_maintenance + 2);
	EXPECT_EQ(after.core_pages_unmapped, before.core_pages_unmapped + 2);
}

} // namespace
