// SPDX-License-Identifier: GPL-2.0
// Host tests of guest_walk(): guest-owned x86-64 paging structures and
// arm64 stage-2 tables in a fake guest memory, with descriptors written by
// hand from the architecture manuals.
#include <errno.h>

#include <map>

#include "../../mmu/pgtable/guest_walk.hpp"

#include "host_test.hpp"

namespace {

using namespace kvmmu;
using namespace kvmmu::pgt;

// Guest memory holding only page-table entries; counts accesses.
struct FakeGuest final : GuestTableAccess {
	std::map<u64, u64> mem;
	int reads = 0, cmpxchgs = 0;
	u64 fail_at = ~u64(0);	 // read of this gpa fails with -EFAULT
	u64 race_at = ~u64(0);	 // first cmpxchg here loses a race
	u64 race_value = 0;

	Result<u64> read(u64 gpa) override
	{
		reads++;
		if (gpa == fail_at)
			return Errno::fault;
		auto it = mem.find(gpa);
		return it == mem.end() ? 0 : it->second;
	}
	Result<bool> cmpxchg(u64 gpa, u64 old, u64 val) override
	{
		cmpxchgs++;
		if (gpa == race_at) {
			race_at = ~u64(0);
			mem[gpa] = race_value;
			return false;
		}
		if (mem[gpa] != old)
			return false;
		mem[gpa] = val;
		return true;
	}
};

constexpr u64 idx(u64 va, unsigned shift) { return (va >> shift) & 511; }

// x86-64 bits (SDM vol. 3, table 4-14..4-20).
constexpr u64 P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, XD = u64(1) << 63;

class X86GuestWalk : public HostTest {
protected:
	// PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000, all P|RW|US.
	static constexpr u64 va = 0x0000'7f12'3456'7000;
	FakeGuest g;
	u64 pml4e() const { return 0x1000 + idx(va, 39) * 8; }
	u64 pdpte() const { return 0x2000 + idx(va, 30) * 8; }
	u64 pde() const { return 0x3000 + idx(va, 21) * 8; }
	u64 pte() const { return 0x4000 + idx(va, 12) * 8; }

	void SetUp() override
	{
		HostTest::SetUp();
		g.mem[pml4e()] = 0x2000 | P | RW | US;
		g.mem[pdpte()] = 0x3000 | P | RW | US;
		g.mem[pde()] = 0x4000 | P | RW | US;
		g.mem[pte()] = 0xabc000 | P | RW | US;
	}
	GuestWalk walk(u64 addr, u32 access, bool user = false, bool ad = false)
	{
		auto r = guest_walk<X86Guest64>(g, 0x1000, addr, access, user, ad);
		EXPECT_TRUE(r.ok());
		return r.ok() ? r.value() : GuestWalk{};
	}
};

TEST_F(X86GuestWalk, FourKPage)
{
	GuestWalk w = walk(va + 0x123, kRead | kWrite, true);
	EXPECT_EQ(w.fault, GuestFault::none);
	EXPECT_EQ(w.level, 0u);
	EXPECT_EQ(w.size, 0x1000u);
	EXPECT_EQ(w.oa, 0xabc123u);
	EXPECT_EQ(w.prot, kRead | kWrite | kExec);
	EXPECT_TRUE(w.user);
}

TEST_F(X86GuestWalk, LargePages)
{
	g.mem[pde()] = 0x4060'0000 | P | RW | PS; // 2M, supervisor
	GuestWalk w = walk(va + 0x5, kRead);
	EXPECT_EQ(w.fault, GuestFault::none);
	EXPECT_EQ(w.level, 1u);
	EXPECT_EQ(w.size, u64(2) << 20);
	EXPECT_EQ(w.oa, 0x4060'0000 + (va & 0x1f'ffff) + 5);
	EXPECT_FALSE(w.user);

	g.mem[pdpte()] = 0x8000'0000 | P | PS | XD; // 1G, read-only, no exec
	w = walk(va, kRead);
	EXPECT_EQ(w.level, 2u);
	EXPECT_EQ(w.oa, 0x8000'0000 + (va & 0x3fff'ffff));
	EXPECT_EQ(w.prot, kRead);
}

TEST_F(X86GuestWalk, NotPresentAtEachLevel)
{
	const u64 entries[] = {pte(), pde(), pdpte(), pml4e()};
	for (unsigned level = 0; level < 4; level++) {
		SetUp();
		g.mem[entries[level]] &= ~P;
		GuestWalk w = walk(va, kRead);
		EXPECT_EQ(w.fault, GuestFault::not_present) << level;
		EXPECT_EQ(w.level, level);
	}
}

TEST_F(X86GuestWalk, PermissionsCombineAcrossLevels)
{
	g.mem[pdpte()] &= ~RW; // read-only above the leaf
	EXPECT_EQ(walk(va, kWrite).fault, GuestFault::permission);
	EXPECT_EQ(walk(va, kRead).fault, GuestFault::none);
	SetUp();
	g.mem[pde()] &= ~US; // supervisor-only above the leaf
	EXPECT_EQ(walk(va, kRead, true).fault, GuestFault::permission);
	EXPECT_EQ(walk(va, kRead, false).fault, GuestFault::none);
	SetUp();
	g.mem[pml4e()] |= XD; // no-execute anywhere forbids execution
	EXPECT_EQ(walk(va, kExec).fault, GuestFault::permission);
}

TEST_F(X86GuestWalk, ReservedEncodings)
{
	g.mem[pml4e()] |= PS; // no 512G pages
	GuestWalk w = walk(va, kRead);
	EXPECT_EQ(w.fault, GuestFault::reserved);
	EXPECT_EQ(w.level, 3u);
	SetUp();
	g.mem[pde()] = 0x4060'2000 | P | PS; // 2M page with address bit 13 set (12 is PAT)
	EXPECT_EQ(walk(va, kRead).fault, GuestFault::reserved);
	SetUp();
	g.mem[pde()] = 0x4060'1000 | P | PS; // bit 12 of a 2M PDE is PAT, not address
	GuestWalk w2 = walk(va, kRead);
	EXPECT_EQ(w2.fault, GuestFault::none);
	EXPECT_EQ(w2.oa, 0x4060'0000 + (va & 0x1f'ffff));
}

TEST_F(X86GuestWalk, AddressBeyondFourLevels)
{
	GuestWalk w = walk(u64(1) << 48, kRead);
	EXPECT_EQ(w.fault, GuestFault::address_size);
	EXPECT_EQ(g.reads, 0);
}

TEST_F(X86GuestWalk, AccessedAndDirtyUpdates)
{
	walk(va, kRead, false, false);
	EXPECT_FALSE(g.mem[pte()] & A); // no updates unless asked
	walk(va, kRead, false, true);
	for (u64 e : {pml4e(), pdpte(), pde(), pte()})
		EXPECT_TRUE(g.mem[e] & A) << std::hex << e;
	EXPECT_FALSE(g.mem[pte()] & D);
	walk(va, kWrite, false, true);
	EXPECT_TRUE(g.mem[pte()] & D);
	EXPECT_FALSE(g.mem[pde()] & D); // D only on the leaf
	// A write that faults on permission does not dirty.
	g.mem[pte()] &= ~(RW | D);
	EXPECT_EQ(walk(va, kWrite, false, true).fault, GuestFault::permission);
	EXPECT_FALSE(g.mem[pte()] & D);
}

TEST_F(X86GuestWalk, LostUpdateRaceRestartsFromRoot)
{
	// The guest rewrites the PDE while we set its accessed bit.
	g.race_at = pde();
	g.race_value = 0x4000 | P | US; // now read-only
	GuestWalk w = walk(va, kWrite, false, true);
	EXPECT_EQ(w.fault, GuestFault::permission); // saw the new entry
	EXPECT_GT(g.reads, 4);
}

TEST_F(X86GuestWalk, AccessorErrorsPropagate)
{
	g.fail_at = pde();
	auto r = guest_walk<X86Guest64>(g, 0x1000, va, kRead, false, false);
	ASSERT_FALSE(r.ok());
	EXPECT_EQ(r.to_errno(), -EFAULT);
}

// Arm stage-2, 4K granule, 4 levels (Arm ARM D8): page = bits[1:0] 0b11 at
// level 3, block = 0b01 at levels 1-2, table = 0b11; S2AP[7:6], AF bit 10,
// XN bit 54, MemAttr[5:2].
constexpr u64 S2_TABLE = 3, S2_PAGE = 3, S2_BLOCK = 1, S2_R = 1 << 6, S2_W = 1 << 7,
	      S2_AF = 1 << 10, S2_XN = u64(1) << 54, S2_NORMAL = 0xf << 2, S2_ISH = 3 << 8;

class ArmS2GuestWalk : public HostTest {
protected:
	static constexpr u64 ipa = 0x0000'4567'8900'0000;
	FakeGuest g;
	u64 l0() const { return 0x10000 + idx(ipa, 39) * 8; }
	u64 l1() const { return 0x11000 + idx(ipa, 30) * 8; }
	u64 l2() const { return 0x12000 + idx(ipa, 21) * 8; }
	u64 l3() const { return 0x13000 + idx(ipa, 12) * 8; }
	void SetUp() override
	{
		HostTest::SetUp();
		g.mem[l0()] = 0x11000 | S2_TABLE;
		g.mem[l1()] = 0x12000 | S2_TABLE;
		g.mem[l2()] = 0x13000 | S2_TABLE;
		g.mem[l3()] = 0x7654'3000 | S2_PAGE | S2_R | S2_W | S2_AF | S2_NORMAL | S2_ISH;
	}
	GuestWalk walk(u64 addr, u32 access, bool ad = false)
	{
		auto r = guest_walk<ArmS2Guest4K>(g, 0x10000, addr, access, false, ad);
		EXPECT_TRUE(r.ok());
		return r.ok() ? r.value() : GuestWalk{};
	}
};

TEST_F(ArmS2GuestWalk, PageAndBlock)
{
	GuestWalk w = walk(ipa + 0x10, kRead | kWrite | kExec);
	EXPECT_EQ(w.fault, GuestFault::none);
	EXPECT_EQ(w.level, 0u);
	EXPECT_EQ(w.oa, 0x7654'3010u);
	g.mem[l2()] = 0x8000'0000 | S2_BLOCK | S2_R | S2_AF | S2_XN | S2_NORMAL;
	w = walk(ipa + 0x1234, kRead);
	EXPECT_EQ(w.level, 1u);
	EXPECT_EQ(w.size, u64(2) << 20);
	EXPECT_EQ(w.oa, 0x8000'0000 + (ipa & 0x1f'ffff) + 0x1234);
	EXPECT_EQ(w.prot, kRead);
	EXPECT_EQ(walk(ipa, kWrite).fault, GuestFault::permission);
	EXPECT_EQ(walk(ipa, kExec).fault, GuestFault::permission);
}

TEST_F(ArmS2GuestWalk, AccessFlag)
{
	g.mem[l3()] &= ~S2_AF;
	GuestWalk w = walk(ipa, kRead);
	EXPECT_EQ(w.fault, GuestFault::access_flag);
	w = walk(ipa, kRead, true); // with hardware AF management emulated
	EXPECT_EQ(w.fault, GuestFault::none);
	EXPECT_TRUE(g.mem[l3()] & S2_AF);
}

TEST_F(ArmS2GuestWalk, InvalidAndReserved)
{
	g.mem[l1()] = 0;
	EXPECT_EQ(walk(ipa, kRead).fault, GuestFault::not_present);
	SetUp();
	g.mem[l3()] = (g.mem[l3()] & ~u64(3)) | 1; // 0b01 at level 3 is reserved
	GuestWalk w = walk(ipa, kRead);
	EXPECT_EQ(w.fault, GuestFault::reserved);
	EXPECT_EQ(w.level, 0u);
	EXPECT_EQ(walk(u64(1) << 48, kRead).fault, GuestFault::address_size);
}

} // namespace
