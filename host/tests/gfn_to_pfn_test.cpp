// SPDX-License-Identifier: GPL-2.0
// hva_to_pfn()'s slow path over memory whose faults must wait with the mmap
// lock dropped (userfaultfd MISSING mode, I/O): the host fake's
// kvmmu_plat_fault_one() drops the lock once or several times before the
// page appears, or ends its wait with a signal pending. hva_to_pfn() must
// wait (never use a GUP that cannot drop the lock on such memory), look the
// VMA up again after every drop, never touch the VMA while the lock is
// dropped, return -EINTR on a signal, and leave the lock balanced.
#include <errno.h>
#include <string.h>

#include <kvmmu/hooks.h>

#include "../../mmu/gfn_to_pfn.hpp"
#include "host_test.hpp"

namespace {

using kvmmu::Errno;
using kvmmu::Hva;
using kvmmu::hva_to_pfn;
using kvmmu::kPfnAtomic;
using kvmmu::kPfnMapWritable;
using kvmmu::kPfnNoWait;
using kvmmu::kPfnWrite;
using kvmmu::PfnInfo;
using kvmmu::Result;

constexpr uint64_t kPage = 4096;

kvmmu_host_calls calls()
{
	kvmmu_host_calls c{};
	kvmmu_host_get_calls(&c);
	return c;
}

// Differences of the call counters since construction.
struct CallDelta {
	kvmmu_host_calls before = calls();
	long fault() const { return calls().fault - before.fault; }
	long vma_lookup() const { return calls().vma_lookup - before.vma_lookup; }
	long lock() const { return calls().mmap_lock - before.mmap_lock; }
	long unlock() const { return calls().mmap_unlock - before.mmap_unlock; }
	long waits() const { return calls().userfault_waits - before.userfault_waits; }
	long no_retry() const { return calls().userfault_no_retry - before.userfault_no_retry; }
	long unheld() const { return calls().mmap_unheld - before.mmap_unheld; }
};

class GfnToPfnTest : public HostTest {
protected:
	static constexpr uint64_t kHva = 0x40000000;
	static constexpr uint64_t kGpa = 0x80000000;
	static constexpr uint64_t kPages = 16;

	void SetUp() override
	{
		HostTest::SetUp();
		refs_ = kvmmu_host_pfn_refs_total();
		mm_ = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm_);
		ASSERT_EQ(kvmmu_host_mm_map(mm_, kHva, kPages * kPage,
					    KVMMU_HOST_MAP_WRITE | KVMMU_HOST_MAP_LAZY), 0);
	}

	void TearDown() override
	{
		if (vm_)
			kvmmu_vm_destroy(vm_);
		kvmmu_host_set_userfault_hook(nullptr, nullptr);
		kvmmu_host_set_signal_pending(false);
		kvmmu_host_set_current_mm(nullptr);
		EXPECT_EQ(kvmmu_host_mmap_held(), 0) << "mmap lock left held";
		EXPECT_EQ(kvmmu_host_pfn_refs_total(), refs_) << "page references leaked";
		kvmmu_host_mm_destroy(mm_);
		HostTest::TearDown();
	}

	void make_vm()
	{
		ASSERT_EQ(kvmmu_vm_create(0, &vm_), 0);
		kvmmu_memory_region r{0, 0, kGpa, kPages * kPage, kHva};
		ASSERT_EQ(kvmmu_vm_set_memory_region(vm_, &r), 0);
	}

	// The lock taken as often as released, nothing held, nothing touched
	// without it, and no GUP on the userfault page that could not wait.
	void expect_clean(const CallDelta &d)
	{
		EXPECT_EQ(d.lock(), d.unlock()) << "mmap lock/unlock unbalanced";
		EXPECT_EQ(kvmmu_host_mmap_held(), 0);
		EXPECT_EQ(d.unheld(), 0) << "VMA, GUP or fault without the mmap lock";
		EXPECT_EQ(d.no_retry(), 0) << "GUP that cannot drop the lock hit a userfault";
	}

	kvmmu_host_mm *mm_ = nullptr;
	kvmmu_vm *vm_ = nullptr;
	long refs_ = 0;
};

TEST_F(GfnToPfnTest, ReadWaitsForTheHandlerThenTakesThePage)
{
	const uint64_t hva = kHva + 3 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, 1, false);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva + 5), kPfnMapWritable);
	ASSERT_TRUE(r.ok()) << r.to_errno();
	const uint64_t pfn = kvmmu_host_mm_pfn(mm_, hva);
	ASSERT_NE(pfn, 0u) << "the wait did not fill the page";
	EXPECT_EQ(r.value().pfn.raw(), pfn);
	EXPECT_TRUE(r.value().referenced);
	EXPECT_EQ(kvmmu_host_pfn_refs(pfn), 1);
	EXPECT_EQ(d.waits(), 1);
	EXPECT_EQ(d.fault(), 1);
	EXPECT_EQ(d.vma_lookup(), 2) << "the VMA must be looked up again after the drop";
	expect_clean(d);
	kvmmu::release_pfn(r.value(), false, true);
}

TEST_F(GfnToPfnTest, WriteRetriesAcrossSeveralLockDrops)
{
	const uint64_t hva = kHva + 7 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, 3, false);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), kPfnWrite);
	ASSERT_TRUE(r.ok()) << r.to_errno();
	EXPECT_EQ(r.value().pfn.raw(), kvmmu_host_mm_pfn(mm_, hva));
	EXPECT_TRUE(r.value().writable);
	EXPECT_EQ(d.waits(), 3);
	EXPECT_EQ(d.fault(), 3);
	EXPECT_EQ(d.vma_lookup(), 4);
	expect_clean(d);
	kvmmu::release_pfn(r.value(), true, true);
}

TEST_F(GfnToPfnTest, SignalWhileWaitingIsEintr)
{
	const uint64_t hva = kHva + 2 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, -1, true);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), kPfnWrite);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error(), Errno::intr);
	EXPECT_EQ(d.waits(), 1) << "one wait, ended by the signal, then no retry";
	EXPECT_EQ(d.vma_lookup(), 1);
	EXPECT_EQ(kvmmu_host_mm_pfn(mm_, hva), 0u);
	expect_clean(d);

	// Once the signal is handled and the page filled, it works.
	kvmmu_host_set_signal_pending(false);
	kvmmu_host_mm_set_userfault(mm_, hva, 1, false);
	Result<PfnInfo> r2 = hva_to_pfn(mm_, Hva(hva), kPfnWrite);
	ASSERT_TRUE(r2.ok()) << r2.to_errno();
	expect_clean(d);
	kvmmu::release_pfn(r2.value(), false, false);
}

// What the faulting thread sees and does while its wait has the lock dropped.
struct DuringWait {
	kvmmu_host_mm *mm;
	uint64_t hva;
	int calls = 0;
	long held = -1;
	void (*change)(DuringWait *) = nullptr;
};

void during_wait(void *arg)
{
	auto *w = static_cast<DuringWait *>(arg);
	w->calls++;
	w->held = kvmmu_host_mmap_held();
	if (w->change)
		w->change(w);
}

TEST_F(GfnToPfnTest, VmaUnmappedDuringTheWaitIsLookedUpAgain)
{
	const uint64_t hva = kHva + 4 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, -1, false);
	DuringWait w{mm_, hva};
	w.change = [](DuringWait *x) { kvmmu_host_mm_unmap(x->mm, kHva, kPages * kPage); };
	kvmmu_host_set_userfault_hook(during_wait, &w);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), 0);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error(), Errno::fault) << "the old VMA was used after the drop";
	EXPECT_EQ(w.calls, 1);
	EXPECT_EQ(w.held, 0) << "the mmap lock was still held during the wait";
	EXPECT_EQ(d.vma_lookup(), 2);
	expect_clean(d);
}

TEST_F(GfnToPfnTest, VmaMadeReadOnlyDuringTheWaitRefusesTheWrite)
{
	const uint64_t hva = kHva + 5 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, 1, false);
	DuringWait w{mm_, hva};
	w.change = [](DuringWait *x) { kvmmu_host_mm_protect(x->mm, kHva, kPages * kPage, false); };
	kvmmu_host_set_userfault_hook(during_wait, &w);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), kPfnWrite);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error(), Errno::perm);
	EXPECT_EQ(d.vma_lookup(), 2);
	expect_clean(d);
}

TEST_F(GfnToPfnTest, NoWaitAndAtomicDoNotWait)
{
	const uint64_t hva = kHva + 6 * kPage;
	kvmmu_host_mm_set_userfault(mm_, hva, 1, false);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), kPfnNoWait | kPfnMapWritable);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.error(), Errno::again);
	Result<PfnInfo> r2 = hva_to_pfn(mm_, Hva(hva), kPfnAtomic | kPfnWrite);
	ASSERT_FALSE(r2.ok());
	EXPECT_EQ(r2.error(), Errno::again);
	EXPECT_EQ(d.fault(), 0);
	EXPECT_EQ(d.waits(), 0);
	EXPECT_EQ(kvmmu_host_mm_pfn(mm_, hva), 0u);
	expect_clean(d);
}

TEST_F(GfnToPfnTest, IoWaitDropsTheLockAndRetries)
{
	// Not the current mm: no fast GUP, the slow path only.
	kvmmu_host_set_current_mm(nullptr);
	const uint64_t hva = kHva + 8 * kPage;
	kvmmu_host_mm_set_need_io(mm_, hva, true);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(hva), 0);
	ASSERT_TRUE(r.ok()) << r.to_errno();
	EXPECT_EQ(r.value().pfn.raw(), kvmmu_host_mm_pfn(mm_, hva));
	EXPECT_FALSE(r.value().writable);
	EXPECT_EQ(d.fault(), 1);
	EXPECT_EQ(d.vma_lookup(), 2) << "the wait for I/O drops the lock: look again";
	expect_clean(d);
	kvmmu::release_pfn(r.value(), false, false);
}

TEST_F(GfnToPfnTest, OrdinaryMemoryTakesNoWait)
{
	kvmmu_host_set_current_mm(nullptr);
	CallDelta d;
	Result<PfnInfo> r = hva_to_pfn(mm_, Hva(kHva + 9 * kPage), kPfnWrite);
	ASSERT_TRUE(r.ok()) << r.to_errno();
	EXPECT_EQ(d.waits(), 0);
	EXPECT_EQ(d.vma_lookup(), 1);
	EXPECT_EQ(d.lock(), 1);
	expect_clean(d);
	kvmmu::release_pfn(r.value(), true, true);
}

// Through the hooks a KVM core and the ioctls use: kvmmu_vm_fault(),
// GPA_ACCESS (kvmmu_vm_access) and PRE_FAULT. The "handler" fills the page
// with a pattern during the wait that resolves it.
void fill_on_resolve(void *arg)
{
	auto *w = static_cast<DuringWait *>(arg);
	w->calls++;
	w->held = kvmmu_host_mmap_held();
	if (char *p = static_cast<char *>(kvmmu_host_mm_page(w->mm, w->hva)))
		memset(p, 0x5a, kPage);
}

TEST_F(GfnToPfnTest, GuestAccessesWaitForTheHandler)
{
	make_vm();
	DuringWait w{mm_, kHva + 1 * kPage};
	kvmmu_host_set_userfault_hook(fill_on_resolve, &w);
	kvmmu_host_mm_set_userfault(mm_, w.hva, 2, false);
	CallDelta d;
	char buf[64];
	ASSERT_EQ(kvmmu_vm_access(vm_, kGpa + kPage + 8, sizeof(buf), reinterpret_cast<uintptr_t>(buf),
				  false), 0);
	char want[64];
	memset(want, 0x5a, sizeof(want));
	EXPECT_EQ(memcmp(buf, want, sizeof(buf)), 0);
	EXPECT_EQ(w.calls, 2);
	EXPECT_EQ(w.held, 0);

	// A write fault through kvmmu_vm_fault().
	w.hva = kHva + 10 * kPage;
	kvmmu_host_mm_set_userfault(mm_, w.hva, 1, false);
	kvmmu_fault_info fi{};
	ASSERT_EQ(kvmmu_vm_fault(vm_, kGpa + 10 * kPage, KVMMU_FAULT_WRITE, &fi), 0);
	EXPECT_EQ(fi.pfn, kvmmu_host_mm_pfn(mm_, w.hva));
	EXPECT_TRUE(fi.writable);

	// PRE_FAULT over two missing pages.
	kvmmu_host_mm_set_userfault(mm_, kHva + 11 * kPage, 1, false);
	kvmmu_host_mm_set_userfault(mm_, kHva + 12 * kPage, 1, false);
	ASSERT_EQ(kvmmu_vm_pre_fault(vm_, kGpa + 11 * kPage, 2 * kPage, 0), 0);
	kvmmu_leaf_info l{};
	ASSERT_EQ(kvmmu_vm_translate(vm_, kGpa + 12 * kPage, &l), 0);
	EXPECT_TRUE(l.mapped);
	EXPECT_EQ(l.pfn, kvmmu_host_mm_pfn(mm_, kHva + 12 * kPage));
	EXPECT_EQ(d.waits(), 5);
	expect_clean(d);
}

TEST_F(GfnToPfnTest, GuestAccessInterruptedBySignalIsEintr)
{
	make_vm();
	kvmmu_host_mm_set_userfault(mm_, kHva + 3 * kPage, -1, true);
	CallDelta d;
	char buf[16];
	EXPECT_EQ(kvmmu_vm_access(vm_, kGpa + 3 * kPage, sizeof(buf), reinterpret_cast<uintptr_t>(buf),
				  false), -EINTR);
	kvmmu_host_set_signal_pending(false);
	// PRE_FAULT: the page before the missing one stays mapped.
	EXPECT_EQ(kvmmu_vm_pre_fault(vm_, kGpa + 2 * kPage, 2 * kPage, KVMMU_FAULT_WRITE), -EINTR);
	kvmmu_host_set_signal_pending(false);
	kvmmu_leaf_info l{};
	ASSERT_EQ(kvmmu_vm_translate(vm_, kGpa + 2 * kPage, &l), 0);
	EXPECT_TRUE(l.mapped);
	ASSERT_EQ(kvmmu_vm_translate(vm_, kGpa + 3 * kPage, &l), 0);
	EXPECT_FALSE(l.mapped);
	EXPECT_EQ(d.waits(), 2);
	// Filled later: the access works.
	kvmmu_host_mm_set_userfault(mm_, kHva + 3 * kPage, 1, false);
	EXPECT_EQ(kvmmu_vm_access(vm_, kGpa + 3 * kPage, sizeof(buf), reinterpret_cast<uintptr_t>(buf),
				  false), 0);
	expect_clean(d);
}

} // namespace
