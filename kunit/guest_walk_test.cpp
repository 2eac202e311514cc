// SPDX-License-Identifier: GPL-2.0
// KUnit bodies for guest_walk() over tables held in kernel memory standing
// in for guest memory (the fault path will supply gfn_to_pfn + kmap).
#include "../mmu/pgtable/guest_walk.hpp"

#include "kt.hpp"

using namespace kvmmu;
using namespace kvmmu::pgt;

namespace {

// Guest physical [0, 64K) backed by one kernel allocation.
class BufferGuest final : public GuestTableAccess {
public:
	static constexpr u64 kBytes = 64 * 1024;
	explicit BufferGuest(u64 *mem) : mem_(mem) {}
	Result<u64> read(u64 gpa) override
	{
		if (gpa >= kBytes || (gpa & 7))
			return Errno::fault;
		return __atomic_load_n(&mem_[gpa / 8], __ATOMIC_ACQUIRE);
	}
	Result<bool> cmpxchg(u64 gpa, u64 old, u64 val) override
	{
		if (gpa >= kBytes || (gpa & 7))
			return Errno::fault;
		return __atomic_compare_exchange_n(&mem_[gpa / 8], &old, val, false, __ATOMIC_ACQ_REL,
						   __ATOMIC_ACQUIRE);
	}
	u64 &at(u64 gpa) { return mem_[gpa / 8]; }

private:
	u64 *mem_;
};

} // namespace

KT_TEST(mmu_guest_walk, x86_4level)
{
	auto *mem = static_cast<u64 *>(kvmmu::kmalloc(BufferGuest::kBytes, 4096, gfp::kernel | gfp::zero));
	KT_EXPECT(mem != nullptr);
	if (!mem)
		return;
	BufferGuest g(mem);
	const u64 va = 0x7f0012345000;
	auto ix = [&](unsigned shift) { return ((va >> shift) & 511) * 8; };
	g.at(0x1000 + ix(39)) = 0x2000 | 0x7;
	g.at(0x2000 + ix(30)) = 0x3000 | 0x7;
	g.at(0x3000 + ix(21)) = 0x4000 | 0x7;
	g.at(0x4000 + ix(12)) = 0x123000 | 0x5; // user, read-only
	auto r = guest_walk<X86Guest64>(g, 0x1000, va + 0x42, kRead, true, true);
	KT_EXPECT(r.ok());
	if (r.ok()) {
		KT_EXPECT(r.value().fault == GuestFault::none);
		KT_EXPECT_EQ(r.value().oa, u64(0x123042));
		KT_EXPECT_EQ(r.value().level, 0u);
	}
	KT_EXPECT(g.at(0x4000 + ix(12)) & 0x20); // accessed set
	auto w = guest_walk<X86Guest64>(g, 0x1000, va, kWrite, true, true);
	KT_EXPECT(w.ok() && w.value().fault == GuestFault::permission);
	KT_EXPECT(!(g.at(0x4000 + ix(12)) & 0x40)); // not dirtied
	g.at(0x3000 + ix(21)) = 0;
	auto n = guest_walk<X86Guest64>(g, 0x1000, va, kRead, false, false);
	KT_EXPECT(n.ok() && n.value().fault == GuestFault::not_present && n.value().level == 1);
	// A table pointer outside guest memory is the accessor's error.
	g.at(0x3000 + ix(21)) = 0x100000 | 0x7;
	auto e = guest_walk<X86Guest64>(g, 0x1000, va, kRead, false, false);
	KT_EXPECT(!e.ok() && e.error() == Errno::fault);
	kfree(mem);
}

KT_TEST(mmu_guest_walk, arm64_stage2)
{
	auto *mem = static_cast<u64 *>(kvmmu::kmalloc(BufferGuest::kBytes, 4096, gfp::kernel | gfp::zero));
	KT_EXPECT(mem != nullptr);
	if (!mem)
		return;
	BufferGuest g(mem);
	const u64 ipa = 0x40200000;
	auto ix = [&](unsigned shift) { return ((ipa >> shift) & 511) * 8; };
	g.at(0x1000 + ix(39)) = 0x2000 | 3;
	g.at(0x2000 + ix(30)) = 0x3000 | 3;
	// 2M block, read-only, AF clear: faults unless AF updates are emulated.
	g.at(0x3000 + ix(21)) = 0x80000000 | 1 | (1 << 6) | (0xf << 2);
	auto a = guest_walk<ArmS2Guest4K>(g, 0x1000, ipa + 0x10, kRead, false, false);
	KT_EXPECT(a.ok() && a.value().fault == GuestFault::access_flag);
	auto b = guest_walk<ArmS2Guest4K>(g, 0x1000, ipa + 0x10, kRead, false, true);
	KT_EXPECT(b.ok() && b.value().fault == GuestFault::none);
	if (b.ok()) {
		KT_EXPECT_EQ(b.value().oa, u64(0x80000010));
		KT_EXPECT_EQ(b.value().level, 1u);
	}
	KT_EXPECT(g.at(0x3000 + ix(21)) & (1 << 10));
	auto c = guest_walk<ArmS2Guest4K>(g, 0x1000, ipa, kWrite, false, true);
	KT_EXPECT(c.ok() && c.value().fault == GuestFault::permission);
	kfree(mem);
}
