// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for the fault path on real user memory: the case thread has
// adopted the loading process's mm (kunit/glue.c), maps anonymous memory
// in it with vm_mmap(), and drives a VM whose mmu_notifier is registered on
// that mm, through the hooks of include/kvmmu/hooks.h.
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/types.hpp>

#include "kt.hpp"

#include "kt_mm.h"
#include "../mmu/vm.hpp"

using namespace kvmmu;

namespace {

constexpr u64 kFaultGpa = u64(1) << 32;
constexpr unsigned kFaultPages = 32;

// A VM over kFaultPages pages of fresh user memory at kFaultGpa, plus a user
// buffer of one page for accesses. Fields stay zero when setup fails.
struct UserVm {
	void *kt;
	kvmmu_vm *vm = nullptr;
	void *notifier = nullptr;
	u64 mem = 0, buf = 0;

	explicit UserVm(void *t, u32 flags = 0) : kt(t)
	{
		mem = kvmmu_kt_user_map(kFaultPages * kPageSize);
		buf = kvmmu_kt_user_map(kPageSize);
		KT_EXPECT(mem && buf);
		if (!mem || !buf)
			return;
		KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
		if (!vm)
			return;
		notifier = kvmmu_kt_notifier_attach(vm);
		KT_EXPECT(notifier != nullptr);
		kvmmu_memory_region r{0, flags, kFaultGpa, kFaultPages * kPageSize, mem};
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r), 0);
	}
	~UserVm()
	{
		kvmmu_kt_notifier_detach(notifier);
		kvmmu_vm_destroy(vm);
		if (mem)
			kvmmu_kt_user_unmap(mem, kFaultPages * kPageSize);
		if (buf)
			kvmmu_kt_user_unmap(buf, kPageSize);
	}
	bool ok() const { return vm && notifier; }
	kvmmu_leaf_info leaf(u64 gpa)
	{
		kvmmu_leaf_info l{};
		KT_EXPECT_EQ(kvmmu_vm_translate(vm, gpa, &l), 0);
		return l;
	}
};

// Named apart from other test files' constants: core.cpp is one unit.
const int kFaultNoent = Error(Errno::noent).to_errno();
const int kFaultEfault = Error(Errno::fault).to_errno();
const int kFaultPerm = Error(Errno::perm).to_errno();
const int kFaultInval = Error(Errno::inval).to_errno();

} // namespace

KT_TEST(mmu_fault, user_memory_through_stage2)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt);
	if (!u.ok())
		return;
	// Userspace writes, the guest reads; the guest writes, userspace reads.
	for (unsigned p = 0; p < kFaultPages; p++) {
		u64 v = 0x1000 + p;
		KT_EXPECT_EQ(kvmmu_kt_user_write(u.mem + p * kPageSize + 8, &v, sizeof(v)), 0);
	}
	for (unsigned p = 0; p < kFaultPages; p += 5) {
		KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa + p * kPageSize + 8, 8, u.buf, false), 0);
		u64 v = 0;
		KT_EXPECT_EQ(kvmmu_kt_user_read(&v, u.buf, sizeof(v)), 0);
		KT_EXPECT_EQ(v, 0x1000 + p);
	}
	u64 w = 0xfeedface;
	KT_EXPECT_EQ(kvmmu_kt_user_write(u.buf, &w, sizeof(w)), 0);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa + 3 * kPageSize, 8, u.buf, true), 0);
	u64 r = 0;
	KT_EXPECT_EQ(kvmmu_kt_user_read(&r, u.mem + 3 * kPageSize, sizeof(r)), 0);
	KT_EXPECT_EQ(r, w);

	kvmmu_leaf_info l = u.leaf(kFaultGpa + 3 * kPageSize);
	KT_EXPECT(l.mapped);
	KT_EXPECT(l.prot & KVMMU_LEAF_PROT_WRITE);
	KT_EXPECT_EQ(l.memtype, u32(KVMMU_LEAF_MT_NORMAL_WB));
	kvmmu_fault_info fi{};
	KT_EXPECT_EQ(kvmmu_vm_fault(u.vm, kFaultGpa + 3 * kPageSize, 0, &fi), 0);
	KT_EXPECT_EQ(fi.pfn, l.pfn);
	kvmmu_vm_mmu_stats s{};
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s), 0);
	KT_EXPECT(s.faults >= 8);
	KT_EXPECT(s.leaves[0] >= 7);
}

KT_TEST(mmu_fault, munmap_invalidates)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt);
	if (!u.ok())
		return;
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(u.vm, kFaultGpa, kFaultPages * kPageSize, KVMMU_FAULT_WRITE), 0);
	KT_EXPECT(u.leaf(kFaultGpa + 4 * kPageSize).mapped);
	kvmmu_vm_counters before{}, after{};
	KT_EXPECT_EQ(kvmmu_vm_get_counters(u.vm, &before), 0);
	// The real notifier drops exactly the unmapped pages.
	KT_EXPECT_EQ(kvmmu_kt_user_unmap(u.mem + 4 * kPageSize, 2 * kPageSize), 0);
	KT_EXPECT_EQ(kvmmu_vm_get_counters(u.vm, &after), 0);
	KT_EXPECT(after.invalidate_range_start > before.invalidate_range_start);
	KT_EXPECT_EQ(after.invalidate_range_start, after.invalidate_range_end);
	KT_EXPECT(!u.leaf(kFaultGpa + 4 * kPageSize).mapped);
	KT_EXPECT(!u.leaf(kFaultGpa + 5 * kPageSize).mapped);
	KT_EXPECT(u.leaf(kFaultGpa + 3 * kPageSize).mapped);
	KT_EXPECT(u.leaf(kFaultGpa + 6 * kPageSize).mapped);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa + 4 * kPageSize, 8, u.buf, false), kFaultEfault);
	kvmmu_vm_mmu_stats s{};
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s), 0);
	KT_EXPECT_EQ(s.pages_unmapped, 2u);
}

KT_TEST(mmu_fault, retry_ranges)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt);
	if (!u.ok())
		return;
	const u64 g0 = kFaultGpa >> kPageShift;
	u64 seq = 0;
	KT_EXPECT_EQ(kvmmu_vm_invalidate_seq(u.vm, &seq), 0);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0, g0 + kFaultPages, seq), 0);
	KT_EXPECT_EQ(kvmmu_kt_user_unmap(u.mem + 10 * kPageSize, kPageSize), 0);
	// Overlapping ranges retry; the others do not.
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0 + 10, g0 + 11, seq), 1);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0 + 5, g0 + 20, seq), 1);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0 + 11, g0 + 20, seq), 0);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0, g0 + 10, seq), 0);
	u64 seq2 = 0;
	KT_EXPECT_EQ(kvmmu_vm_invalidate_seq(u.vm, &seq2), 0);
	KT_EXPECT(seq2 > seq);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0 + 10, g0 + 11, seq2), 0);
	KT_EXPECT_EQ(kvmmu_vm_retry(u.vm, g0 + 11, g0 + 10, seq2), kFaultInval);
}

KT_TEST(mmu_fault, dirty_log)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt, KVMMU_MEMSLOT_LOG_DIRTY_PAGES);
	if (!u.ok())
		return;
	const unsigned dirty[] = {1, 7, 30};
	for (unsigned p : dirty)
		KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa + p * kPageSize, 8, u.buf, true), 0);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa + 2 * kPageSize, 8, u.buf, false), 0);
	KT_EXPECT(!(u.leaf(kFaultGpa + 2 * kPageSize).prot & KVMMU_LEAF_PROT_WRITE));
	KT_EXPECT_EQ(kvmmu_vm_get_dirty_log(u.vm, 0, u.buf), 3);
	u64 bm = 0;
	KT_EXPECT_EQ(kvmmu_kt_user_read(&bm, u.buf, sizeof(bm)), 0);
	KT_EXPECT_EQ(bm, (u64(1) << 1) | (u64(1) << 7) | (u64(1) << 30));
	KT_EXPECT(!(u.leaf(kFaultGpa + 7 * kPageSize).prot & KVMMU_LEAF_PROT_WRITE));
	KT_EXPECT_EQ(kvmmu_vm_get_dirty_log(u.vm, 0, u.buf), 0);
	KT_EXPECT_EQ(kvmmu_vm_get_dirty_log(u.vm, 1, u.buf), kFaultNoent);
}

KT_TEST(mmu_fault, readonly_slot_and_bad_input)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt, KVMMU_MEMSLOT_READONLY);
	if (!u.ok())
		return;
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa, 8, u.buf, true), kFaultPerm);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa, 8, u.buf, false), 0);
	KT_EXPECT(!(u.leaf(kFaultGpa).prot & KVMMU_LEAF_PROT_WRITE));
	kvmmu_fault_info fi{};
	KT_EXPECT_EQ(kvmmu_vm_fault(u.vm, kFaultGpa - kPageSize, 0, &fi), kFaultNoent);
	KT_EXPECT_EQ(kvmmu_vm_fault(u.vm, kFaultGpa, 1u << 7, &fi), kFaultInval);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa, 8, 0, false), kFaultEfault);
	// Overlap and misalignment leave the slot as it was.
	kvmmu_memory_region r{1, 0, kFaultGpa + kPageSize, kPageSize, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), Error(Errno::exist).to_errno());
	r = {0, 0, kFaultGpa + 1, kFaultPages * kPageSize, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), kFaultInval);
	KT_EXPECT_EQ(kvmmu_vm_access(u.vm, kFaultGpa, 8, u.buf, false), 0);
}

// Long write-locked operations in pieces of 4 pages: the real rwlock is
// offered up between pieces (cond_resched_rwlock_write, checked for other
// held locks by CONFIG_DEBUG_ATOMIC_SLEEP and lockdep) from a blockable
// munmap, turning dirty logging on, slot deletion and release.
KT_TEST(mmu_fault, long_operations_in_pieces)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	UserVm u(kt);
	if (!u.ok())
		return;
	KT_EXPECT(reinterpret_cast<Vm *>(u.vm)->set_piece_bytes(4 * kPageSize).ok());
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(u.vm, kFaultGpa, kFaultPages * kPageSize, KVMMU_FAULT_WRITE), 0);
	kvmmu_vm_mmu_stats s0{}, s1{};
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s0), 0);
	// 16 pages: 4 pieces, one flush each.
	KT_EXPECT_EQ(kvmmu_kt_user_unmap(u.mem + 8 * kPageSize, 16 * kPageSize), 0);
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s1), 0);
	KT_EXPECT_EQ(s1.pages_unmapped - s0.pages_unmapped, 16u);
	KT_EXPECT(s1.tlb_flushes - s0.tlb_flushes >= 4);
	KT_EXPECT_EQ(s1.leaves[0], u64(kFaultPages - 16));
	KT_EXPECT(!u.leaf(kFaultGpa + 8 * kPageSize).mapped);
	KT_EXPECT(!u.leaf(kFaultGpa + 23 * kPageSize).mapped);
	KT_EXPECT(u.leaf(kFaultGpa + 24 * kPageSize).mapped);

	kvmmu_memory_region r{0, KVMMU_MEMSLOT_LOG_DIRTY_PAGES, kFaultGpa, kFaultPages * kPageSize, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), 0);
	const unsigned kept[] = {0, 7, 24, 31};
	for (unsigned p : kept) {
		kvmmu_leaf_info l = u.leaf(kFaultGpa + p * kPageSize);
		KT_EXPECT(l.mapped);
		KT_EXPECT(!(l.prot & KVMMU_LEAF_PROT_WRITE));
	}
	r.memory_size = 0;
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r), 0);
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s1), 0);
	KT_EXPECT_EQ(s1.leaves[0], 0u);

	kvmmu_memory_region r2{1, 0, kFaultGpa, 8 * kPageSize, u.mem};
	KT_EXPECT_EQ(kvmmu_vm_set_memory_region(u.vm, &r2), 0);
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(u.vm, kFaultGpa, 8 * kPageSize, 0), 0);
	KT_EXPECT_EQ(kvmmu_vm_release(u.vm), 0);
	KT_EXPECT_EQ(kvmmu_vm_get_mmu_stats(u.vm, &s1), 0);
	KT_EXPECT_EQ(s1.leaves[0], 0u);
	KT_EXPECT_EQ(s1.table_pages, 1u);
}
