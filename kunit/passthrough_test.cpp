// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for device memory in memslots (docs/passthrough.md) on real
// VM_IO | VM_PFNMAP mappings: a kernel page remap_pfn_range()d into the
// case's user mm uncached, write-combining or cached (kunit/glue.c), a
// memslot over it and a real mmu_notifier. The stage-2 memory type is the
// one the architecture's pte encoding gives that mapping; device memory is
// never executable; kvmmu_vm_access() reaches a non-cacheable page as one
// access of the guest's size; the page is never referenced.
#include <kvmmu/error.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/types.hpp>

#include "kt.hpp"

#include "kt_mm.h"

using namespace kvmmu;

namespace {

constexpr u64 kPtGpa = u64(1) << 32;
// The first bytes of the page, where every access of these cases lands.
constexpr unsigned kPtWindow = 64;

// Named apart from other test files' constants: core.cpp is one unit.
const int kPtEfault = Error(Errno::fault).to_errno();
const int kPtPerm = Error(Errno::perm).to_errno();
const int kPtInval = Error(Errno::inval).to_errno();
const int kPtOpnotsupp = Error(Errno::opnotsupp).to_errno();

// A VM with one page-sized memslot at kPtGpa over a remapped kernel page
// of the given mode, plus a user buffer of one page for accesses. Fields
// stay zero when setup fails.
struct PfnmapVm {
	void *kt;
	void *map = nullptr;
	kvmmu_vm *vm = nullptr;
	void *notifier = nullptr;
	u64 buf = 0, pfn = 0;
	int count = 0; // the page's count before the VM saw it

	PfnmapVm(void *t, unsigned mode) : kt(t)
	{
		map = kvmmu_kt_pfnmap_map(mode);
		buf = kvmmu_kt_user_map(kPageSize);
		KT_EXPECT(map != nullptr);
		KT_EXPECT(buf != 0);
		if (!map || !buf)
			return;
		pfn = kvmmu_kt_pfnmap_pfn(map);
		count = kvmmu_kt_pfnmap_page_count(map);
		KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
		if (!vm)
			return;
		notifier = kvmmu_kt_notifier_attach(vm);
		KT_EXPECT(notifier != nullptr);
		kvmmu_memory_region r{0, 0, kPtGpa, kPageSize, kvmmu_kt_pfnmap_addr(map)};
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r), 0);
	}
	~PfnmapVm()
	{
		kvmmu_kt_notifier_detach(notifier);
		kvmmu_vm_destroy(vm);
		if (map) {
			// Nothing kvmmu did left a reference on the page.
			KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(map), count);
			kvmmu_kt_pfnmap_free(map);
		}
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
	void window(u8 *out) { kvmmu_kt_pfnmap_read(map, 0, out, kPtWindow); }
	// After the VMM's munmap: no leaf, no access, the page untouched by
	// kvmmu's bookkeeping.
	void munmap_checks()
	{
		KT_EXPECT_EQ(kvmmu_kt_pfnmap_unmap(map), 0);
		KT_EXPECT(!leaf(kPtGpa).mapped);
		KT_EXPECT_EQ(kvmmu_vm_access(vm, kPtGpa + 8, 4, buf, false), kPtEfault);
		KT_EXPECT_EQ(kvmmu_vm_access(vm, kPtGpa + 8, 4, buf, true), kPtEfault);
		kvmmu_fault_info fi{};
		KT_EXPECT_EQ(kvmmu_vm_fault(vm, kPtGpa, 0, &fi), kPtEfault);
		KT_EXPECT(!leaf(kPtGpa).mapped);
		KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(map), count);
	}
};

bool window_eq(const u8 *a, const u8 *b)
{
	for (unsigned i = 0; i < kPtWindow; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

// Map, fault (pre_fault, then a write fault), translate: the memory type
// the host pte has, the page's pfn, writable; executable only if it is
// cacheable RAM (the cached mapping of a kernel page is); an exec fault on
// device memory fails with -EPERM and leaves the leaf as it was.
void memtype_case(void *kt, unsigned mode)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	PfnmapVm p(kt, mode);
	if (!p.ok())
		return;
	const u32 want = kvmmu_kt_pfnmap_memtype(mode);
	const bool cached = want == KVMMU_LEAF_MT_NORMAL_WB;

	KT_EXPECT(!p.leaf(kPtGpa).mapped);
	KT_EXPECT_EQ(kvmmu_vm_pre_fault(p.vm, kPtGpa, kPageSize, 0), 0);
	kvmmu_leaf_info l = p.leaf(kPtGpa);
	KT_EXPECT(l.mapped);
	KT_EXPECT_EQ(l.memtype, want);
	KT_EXPECT_EQ(l.pfn, p.pfn);
	KT_EXPECT_EQ(l.size, kPageSize);
	KT_EXPECT(l.prot & KVMMU_LEAF_PROT_READ);
	KT_EXPECT_EQ(bool(l.prot & KVMMU_LEAF_PROT_EXEC), cached);

	kvmmu_fault_info fi{};
	KT_EXPECT_EQ(kvmmu_vm_fault(p.vm, kPtGpa, KVMMU_FAULT_WRITE, &fi), 0);
	KT_EXPECT_EQ(fi.pfn, p.pfn);
	l = p.leaf(kPtGpa + 8);
	KT_EXPECT(l.mapped);
	KT_EXPECT(l.prot & KVMMU_LEAF_PROT_WRITE);
	KT_EXPECT_EQ(l.memtype, want);

	if (cached) {
		KT_EXPECT_EQ(kvmmu_vm_fault(p.vm, kPtGpa, KVMMU_FAULT_EXEC, &fi), 0);
		KT_EXPECT(p.leaf(kPtGpa).prot & KVMMU_LEAF_PROT_EXEC);
	} else {
		KT_EXPECT_EQ(kvmmu_vm_fault(p.vm, kPtGpa, KVMMU_FAULT_EXEC, &fi), kPtPerm);
		KT_EXPECT_EQ(kvmmu_vm_fault(p.vm, kPtGpa, KVMMU_FAULT_EXEC | KVMMU_FAULT_WRITE, &fi),
			     kPtPerm);
		l = p.leaf(kPtGpa);
		KT_EXPECT(l.mapped);
		KT_EXPECT(!(l.prot & KVMMU_LEAF_PROT_EXEC));
		KT_EXPECT(l.prot & KVMMU_LEAF_PROT_WRITE);
		KT_EXPECT_EQ(l.memtype, want);
		KT_EXPECT_EQ(l.pfn, p.pfn);
	}
	KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(p.map), p.count);
	p.munmap_checks();
}

// kvmmu_vm_access() through a user buffer. The cacheable RAM page is
// copied like any guest RAM (docs/passthrough.md): a 4-byte write reaches
// the kernel page, a read returns it, odd sizes are plain copies. RAM that
// the host maps uncached or write-combining is not accessed from the
// kernel at all (its only kernel alias is cacheable; ioremap of RAM WARNs):
// -EOPNOTSUPP for accesses of a device's sizes, -EINVAL for others, and
// the page is never touched.
void access_case(void *kt, unsigned mode)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	PfnmapVm p(kt, mode);
	if (!p.ok())
		return;
	const bool cached = kvmmu_kt_pfnmap_memtype(mode) == KVMMU_LEAF_MT_NORMAL_WB;
	if (!cached) {
		u8 before[kPtWindow], after[kPtWindow];
		p.window(before);
		const u64 ones = ~u64(0);
		KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &ones, sizeof(ones)), 0);
		struct {
			u64 off, len;
			int want;
		} acc[] = {{8, 4, kPtOpnotsupp}, {16, 8, kPtOpnotsupp}, {17, 1, kPtOpnotsupp},
			   {18, 2, kPtOpnotsupp}, {32, 3, kPtInval},	 {34, 4, kPtInval},
			   {36, 8, kPtInval},	  {40, 16, kPtInval}};
		for (auto &a : acc) {
			KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + a.off, a.len, p.buf, false), a.want);
			KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + a.off, a.len, p.buf, true), a.want);
		}
		p.window(after);
		KT_EXPECT(window_eq(before, after));
		KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(p.map), p.count);
		p.munmap_checks();
		return;
	}

	const u32 w = 0x5a17c0deu;
	KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &w, sizeof(w)), 0);
	KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + 8, 4, p.buf, true), 0);
	u32 in_page = 0;
	kvmmu_kt_pfnmap_read(p.map, 8, &in_page, sizeof(in_page));
	KT_EXPECT_EQ(in_page, w);
	const u32 zero = 0;
	KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &zero, sizeof(zero)), 0);
	KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + 8, 4, p.buf, false), 0);
	u32 r = 0;
	KT_EXPECT_EQ(kvmmu_kt_user_read(&r, p.buf, sizeof(r)), 0);
	KT_EXPECT_EQ(r, w);
	// Other sizes the device path takes.
	const u64 w8 = 0x0123456789abcdefull;
	KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &w8, sizeof(w8)), 0);
	KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + 16, 8, p.buf, true), 0);
	u64 in8 = 0;
	kvmmu_kt_pfnmap_read(p.map, 16, &in8, sizeof(in8));
	KT_EXPECT_EQ(in8, w8);
	KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + 17, 1, p.buf, false), 0);
	u8 b = 0;
	KT_EXPECT_EQ(kvmmu_kt_user_read(&b, p.buf, 1), 0);
	KT_EXPECT_EQ(b, u8(w8 >> 8));

	u8 before[kPtWindow], after[kPtWindow];
	p.window(before);
	const u64 ones = ~u64(0);
	KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &ones, sizeof(ones)), 0);
	struct {
		u64 off, len;
	} odd[] = {{32, 3}, {34, 4}, {36, 8}, {33, 2}, {40, 16}};
	for (auto &o : odd) {
		const int want = cached ? 0 : kPtInval;
		KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + o.off, o.len, p.buf, false), want);
		if (!cached)
			KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + o.off, o.len, p.buf, true), kPtInval);
	}
	p.window(after);
	KT_EXPECT(window_eq(before, after));
	if (cached) {
		// Plain copies: a 3-byte write lands as three bytes (the
		// reads above refilled the buffer).
		KT_EXPECT_EQ(kvmmu_kt_user_write(p.buf, &ones, sizeof(ones)), 0);
		KT_EXPECT_EQ(kvmmu_vm_access(p.vm, kPtGpa + 33, 3, p.buf, true), 0);
		p.window(after);
		KT_EXPECT_EQ(after[32], before[32]);
		KT_EXPECT_EQ(after[33], 0xff);
		KT_EXPECT_EQ(after[35], 0xff);
		KT_EXPECT_EQ(after[36], before[36]);
	}
	KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(p.map), p.count);
	p.munmap_checks();
	// The last value written is still in the page, and nothing after the
	// munmap reached it.
	kvmmu_kt_pfnmap_read(p.map, 8, &in_page, sizeof(in_page));
	KT_EXPECT_EQ(in_page, w);
}

// A block of device-typed memory: 2 MiB (the first block size of these
// formats) of physically contiguous pages, remapped uncached at a 2 MiB-
// aligned address, takes one block leaf when the slot keeps the alignment;
// a slot over the same mapping one page off takes base pages.
void block_case(void *kt)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	constexpr u64 kBlock = u64(2) << 20;
	const unsigned order = __builtin_ctzll(kBlock) - kPageShift;
	void *map = kvmmu_kt_pfnmap_map_order(KVMMU_KT_PFNMAP_UC, order);
	KT_EXPECT(map != nullptr);
	if (!map)
		return;
	const u64 hva = kvmmu_kt_pfnmap_addr(map);
	KT_EXPECT_EQ(hva & (kBlock - 1), u64(0));
	kvmmu_vm *vm = nullptr;
	KT_EXPECT_EQ(kvmmu_vm_create(0, &vm), 0);
	void *notifier = vm ? kvmmu_kt_notifier_attach(vm) : nullptr;
	KT_EXPECT(notifier != nullptr);
	if (vm && notifier) {
		const u64 skew = kPtGpa + (u64(64) << 20) + kPageSize;
		kvmmu_memory_region r{0, 0, kPtGpa, kBlock, hva};
		kvmmu_memory_region r2{1, 0, skew, kBlock, hva};
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r), 0);
		KT_EXPECT_EQ(kvmmu_vm_set_memory_region(vm, &r2), 0);
		kvmmu_fault_info fi{};
		KT_EXPECT_EQ(kvmmu_vm_fault(vm, kPtGpa + 5 * kPageSize, 0, &fi), 0);
		kvmmu_leaf_info l{};
		KT_EXPECT_EQ(kvmmu_vm_translate(vm, kPtGpa + 5 * kPageSize, &l), 0);
		KT_EXPECT(l.mapped);
		KT_EXPECT_EQ(l.size, kBlock);
		KT_EXPECT_EQ(l.level, 1u);
		KT_EXPECT_EQ(l.memtype, kvmmu_kt_pfnmap_memtype(KVMMU_KT_PFNMAP_UC));
		KT_EXPECT_EQ(l.pfn, kvmmu_kt_pfnmap_pfn(map) + 5);
		KT_EXPECT(!(l.prot & KVMMU_LEAF_PROT_EXEC));
		KT_EXPECT_EQ(kvmmu_vm_fault(vm, skew + 5 * kPageSize, 0, &fi), 0);
		KT_EXPECT_EQ(kvmmu_vm_translate(vm, skew + 5 * kPageSize, &l), 0);
		KT_EXPECT(l.mapped);
		KT_EXPECT_EQ(l.size, kPageSize);
		// The VMM unmaps it: both slots' leaves go.
		KT_EXPECT_EQ(kvmmu_kt_pfnmap_unmap(map), 0);
		KT_EXPECT_EQ(kvmmu_vm_translate(vm, kPtGpa + 5 * kPageSize, &l), 0);
		KT_EXPECT(!l.mapped);
		KT_EXPECT_EQ(kvmmu_vm_translate(vm, skew + 5 * kPageSize, &l), 0);
		KT_EXPECT(!l.mapped);
	}
	if (notifier)
		kvmmu_kt_notifier_detach(notifier);
	if (vm)
		kvmmu_vm_destroy(vm);
	kvmmu_kt_pfnmap_free(map);
}

// kvmmu_vm_mmio_access(), the KVM core's hook (a kernel buffer): the
// cacheable RAM page takes one access of each size; uncached or WC RAM is
// refused; bad sizes, alignment and NULL are -EINVAL; nothing is touched
// by a refused access.
void mmio_hook_case(void *kt, unsigned mode)
{
	if (!kvmmu_kt_have_user_mm(kt))
		return;
	PfnmapVm p(kt, mode);
	if (!p.ok())
		return;
	const bool cached = kvmmu_kt_pfnmap_memtype(mode) == KVMMU_LEAF_MT_NORMAL_WB;
	u8 before[kPtWindow], after[kPtWindow];
	p.window(before);
	u32 v = 0xc0ffee11u, back = 0;
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa + 2, 4, &v, true), kPtInval);
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa, 3, &v, true), kPtInval);
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa, 4, nullptr, false), kPtInval);
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(nullptr, kPtGpa, 4, &v, false), kPtInval);
	p.window(after);
	KT_EXPECT(window_eq(before, after));
	if (!cached) {
		KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa + 8, 4, &v, true), kPtOpnotsupp);
		p.window(after);
		KT_EXPECT(window_eq(before, after));
		return;
	}
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa + 8, 4, &v, true), 0);
	u32 in_page = 0;
	kvmmu_kt_pfnmap_read(p.map, 8, &in_page, sizeof(in_page));
	KT_EXPECT_EQ(in_page, v);
	KT_EXPECT_EQ(kvmmu_vm_mmio_access(p.vm, kPtGpa + 8, 4, &back, false), 0);
	KT_EXPECT_EQ(back, v);
	KT_EXPECT_EQ(kvmmu_kt_pfnmap_page_count(p.map), p.count);
}

} // namespace

KT_TEST(passthrough_memtype, uncached_is_device)
{
	memtype_case(kt, KVMMU_KT_PFNMAP_UC);
}

KT_TEST(passthrough_memtype, write_combining)
{
	memtype_case(kt, KVMMU_KT_PFNMAP_WC);
}

KT_TEST(passthrough_memtype, cached_is_normal_wb)
{
	memtype_case(kt, KVMMU_KT_PFNMAP_WB);
}

KT_TEST(passthrough_memtype, cached_access)
{
	access_case(kt, KVMMU_KT_PFNMAP_WB);
}

KT_TEST(passthrough_memtype, uncached_access)
{
	access_case(kt, KVMMU_KT_PFNMAP_UC);
}

KT_TEST(passthrough_memtype, write_combining_access)
{
	access_case(kt, KVMMU_KT_PFNMAP_WC);
}

KT_TEST(passthrough_memtype, contiguous_block_leaf)
{
	block_case(kt);
}

KT_TEST(passthrough_memtype, mmio_hook_cached)
{
	mmio_hook_case(kt, KVMMU_KT_PFNMAP_WB);
}

KT_TEST(passthrough_memtype, mmio_hook_uncached)
{
	mmio_hook_case(kt, KVMMU_KT_PFNMAP_UC);
}
