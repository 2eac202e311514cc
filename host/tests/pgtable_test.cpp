// SPDX-License-Identifier: GPL-2.0
// Host tests of the page-table engine (mmu/pgtable): every instantiated
// format through typed tests, descriptor encodings checked bit for bit
// against values written by hand from the architecture manuals, table
// memory and reference counts, TLB-invalidation batching, break-before-
// make, the partial-failure (-ENOMEM) contract, lock assertions (death
// tests), a bounded differential fuzzer against a flat reference model and
// a concurrency test for TSan.
//
// Nothing here takes geometry or encodings from format.hpp: the tables the
// engine builds are walked and decoded by this file's own, hand-written
// description of each format (Spec<F> and Hw<F> below), and a test checks
// that the two descriptions agree.
//
// The fuzzer's size can be changed for a longer local run:
//   PGTABLE_FUZZ_SEEDS=<n> PGTABLE_FUZZ_OPS=<n>   seeds 1..n, n ops each
//                                  (default 20 x 2000; 5 under ASan, 2 under TSan)
//   PGTABLE_FUZZ_SEED=<s>                         only seed s, op log printed
#include "pgtable_env.hpp"

namespace {

// ---------------------------------------------------------------------------
// Descriptor encodings, bit for bit, from the manuals
// ---------------------------------------------------------------------------

class PgtableEncoding : public HostTest {};

// Intel SDM vol. 3C, Tables 29-2..29-6 (EPT PML4E/PDPTE/PDE/PTE):
// bit 0 R, 1 W, 2 X, 5:3 memory type (leaves), 6 ignore PAT (leaves),
// 7 PS (PDPTE/PDE: maps a 1G/2M page), 8 A, 9 D (leaves), 51:12 address.
template <class F>
void ept_encoding()
{
	Env<F> e;
	const u64 pa = 0x0000000123456000, pa2m = 0x0000000123400000, pa1g = 0x0000000140000000;
	const u64 ia = 0x40000000; // 1G
	ASSERT_EQ(rc(e.map(ia + 0x1000, 0x1000, pa, {kRWX, MemType::normal_wb})), 0);
	// 4K, RWX, WB (6 << 3), accessed.
	EXPECT_EQ(e.raw(ia + 0x1000, 0), 0x0000000123456137u);
	// Non-leaf entries: address | R | W | X, nothing else.
	const unsigned root = F::levels - 1;
	for (unsigned l = root; l >= 1; l--) {
		u64 t = e.raw(ia + 0x1000, l);
		EXPECT_EQ(t & 0xfff0000000000fff, 0x7u) << "level " << l;
		EXPECT_EQ(t & 0xfff, 0x7u);
		EXPECT_NE(t & 0x000ffffffffff000, 0u);
	}
	// 2M at level 1, R+W, WB: PS (0x80) | A (0x100) | WB (0x30) | RW.
	ASSERT_EQ(rc(e.map(ia + 0x200000, 0x200000, pa2m, kRW)), 0);
	EXPECT_EQ(e.raw(ia + 0x200000, 1), 0x00000001234001b3u);
	// 1G at level 2, RWX, WB.
	ASSERT_EQ(rc(e.map(2 * ia, ia, pa1g, {kRWX, MemType::normal_wb})), 0);
	EXPECT_EQ(e.raw(2 * ia, 2), 0x00000001400001b7u);
	// UC (0) with ignore-PAT (0x40), read-only.
	ASSERT_EQ(rc(e.map(ia + 0x2000, 0x1000, 0xfee00000, {kRead, MemType::device})), 0);
	EXPECT_EQ(e.raw(ia + 0x2000, 0), 0x00000000fee00141u);
	// WC (1 << 3) with ignore-PAT, RW.
	ASSERT_EQ(rc(e.map(ia + 0x3000, 0x1000, 0xc0000000, {kRead | kWrite, MemType::normal_nc})), 0);
	EXPECT_EQ(e.raw(ia + 0x3000, 0), 0x00000000c000014bu);
	// Execute-only (allowed with the execute-only capability).
	ASSERT_EQ(rc(e.map(ia + 0x4000, 0x1000, 0x5000, {kExec, MemType::normal_wb})), 0);
	EXPECT_EQ(e.raw(ia + 0x4000, 0), 0x0000000000005134u);
	// Highest output address: bit 51.
	ASSERT_EQ(rc(e.map(ia + 0x5000, 0x1000, 0x000ffffffffff000, kRO)), 0);
	EXPECT_EQ(e.raw(ia + 0x5000, 0), 0x000ffffffffff131u);

	// A and D as the processor sets them; test_clear_young clears A only.
	e.hw_set(ia + 0x1000, u64(1) << 9);
	Leaf l = e.leaf(ia + 0x1000);
	EXPECT_TRUE(l.young && l.dirty);
	EXPECT_TRUE(e.young_ok(ia + 0x1000, 0x1000));
	EXPECT_EQ(e.raw(ia + 0x1000, 0), 0x0000000123456237u);
	EXPECT_FALSE(e.young_ok(ia + 0x1000, 0x1000));
	// wrprotect clears W (bit 1) only: D stays.
	ASSERT_EQ(rc(e.wrprotect(ia + 0x1000, 0x1000)), 0);
	EXPECT_EQ(e.raw(ia + 0x1000, 0), 0x0000000123456235u);
	EXPECT_TRUE(e.leaf(ia + 0x1000).dirty);
	// Splitting the 2M page: 512 PTEs, same type and permissions, no PS.
	ASSERT_EQ(rc(e.split(ia + 0x200000, 0x200000, 0)), 0);
	EXPECT_EQ(e.raw(ia + 0x200000, 1) & 0xfff, 0x7u);
	EXPECT_EQ(e.raw(ia + 0x3ff000, 0), 0x00000001235ff133u);
}

TEST_F(PgtableEncoding, Ept4) { ept_encoding<Ept4>(); }
TEST_F(PgtableEncoding, Ept5)
{
	ept_encoding<Ept5>();
	// 57-bit input addresses: only the 5-level format takes them.
	Env<Ept5> e5;
	Env<Ept4> e4;
	const u64 high = u64(1) << 56;
	EXPECT_EQ(rc(e4.map(high, 0x1000, 0x1000)), -EINVAL);
	ASSERT_EQ(rc(e5.map(high, 0x1000, 0x1000)), 0);
	EXPECT_EQ(Env<Ept5>::index(high, 4), 256u);
	EXPECT_EQ(e5.raw(high, 0), 0x0000000000001133u);
	EXPECT_EQ(e5.root()[256] & 0xfff, 0x7u);
}

// Arm ARM D8.3 (VMSAv8-64 stage 2 descriptors): bits 1:0 = 0b11 table
// (above the last level) or page (last level), 0b01 block; MemAttr[3:0] in
// 5:2 (0b1111 Normal outer/inner WB, 0b0101 Normal NC, 0b0001
// Device-nGnRE); S2AP in 7:6 (01 read, 10 write); SH in 9:8 (11 inner
// shareable); AF bit 10; XN (XN[1]) bit 54; output address 47:granule.
constexpr u64 kArmXN = u64(1) << 54;

template <class F>
void arm_common(u64 page_ia, u64 page_pa, unsigned g)
{
	Env<F> e;
	const unsigned root = F::levels - 1;
	ASSERT_EQ(rc(e.map(page_ia, u64(1) << g, page_pa, {kRWX, MemType::normal_wb})), 0);
	// Page, RWX, Normal WB: 0b11 | 0xf << 2 | S2AP 11 | SH 11 | AF.
	EXPECT_EQ(e.raw(page_ia, 0), page_pa | 0x7ff);
	// Table descriptors: address | 0b11.
	for (unsigned l = root; l >= 1; l--) {
		u64 t = e.raw(page_ia, l);
		EXPECT_EQ(t & ~(0x0000ffffffffffff & ~((u64(1) << g) - 1)), 0x3u) << "level " << l;
	}
	// RW, no execute; Device-nGnRE; Normal NC read-only.
	const u64 P = u64(1) << g;
	ASSERT_EQ(rc(e.map(page_ia + P, P, page_pa + P, kRW)), 0);
	EXPECT_EQ(e.raw(page_ia + P, 0), (page_pa + P) | kArmXN | 0x7ff);
	ASSERT_EQ(rc(e.map(page_ia + 2 * P, P, page_pa + 2 * P, {kRead | kWrite, MemType::device})), 0);
	EXPECT_EQ(e.raw(page_ia + 2 * P, 0), (page_pa + 2 * P) | kArmXN | 0x7c7);
	ASSERT_EQ(rc(e.map(page_ia + 3 * P, P, page_pa + 3 * P, {kRead, MemType::normal_nc})), 0);
	EXPECT_EQ(e.raw(page_ia + 3 * P, 0), (page_pa + 3 * P) | kArmXN | 0x757);
	// Highest output address: bit 47.
	const u64 top = 0x0000ffffffffffff & ~(P - 1);
	ASSERT_EQ(rc(e.map(page_ia + 4 * P, P, top, kRO)), 0);
	EXPECT_EQ(e.raw(page_ia + 4 * P, 0), top | kArmXN | 0x77f); // S2AP 01, WB
	// Aging clears AF (bit 10); the MMU sets it again.
	EXPECT_TRUE(e.young_ok(page_ia, P));
	EXPECT_EQ(e.raw(page_ia, 0), page_pa | 0x3ff);
	e.hw_set(page_ia, u64(1) << 10);
	EXPECT_EQ(e.raw(page_ia, 0), page_pa | 0x7ff);
	// wrprotect clears S2AP[1] (bit 7).
	ASSERT_EQ(rc(e.wrprotect(page_ia, P)), 0);
	EXPECT_EQ(e.raw(page_ia, 0), page_pa | 0x77f);
	// Replacing a valid page breaks before making.
	const u64 bbm = e.stats().bbm;
	ASSERT_EQ(rc(e.map(page_ia, P, page_pa + 16 * P, kRW)), 0);
	EXPECT_EQ(e.stats().bbm, bbm + 1);
	EXPECT_EQ(e.raw(page_ia, 0), (page_pa + 16 * P) | kArmXN | 0x7ff);
}

TEST_F(PgtableEncoding, Arm4K)
{
	arm_common<ArmS2_4K_L3>(0x40001000, 0x0000008000123000, 12);
	arm_common<ArmS2_4K_L4>(0x0000008040001000, 0x0000008000123000, 12);
	Env<ArmS2_4K_L4> e;
	// 2M block at level 1 and 1G block at level 2: 0b01.
	ASSERT_EQ(rc(e.map(0x200000, 0x200000, 0x0000000080200000, {kRWX, MemType::normal_wb})), 0);
	EXPECT_EQ(e.raw(0x200000, 1), 0x00000000802007fdu);
	ASSERT_EQ(rc(e.map(0x40000000, 0x40000000, 0x0000004000000000, kRW)), 0);
	EXPECT_EQ(e.raw(0x40000000, 2), 0x00400040000007fdu);
	// The 3-level table starts at level 1 (1G entries, 512 of them):
	// 39-bit IPA, nothing above.
	Env<ArmS2_4K_L3> e3;
	EXPECT_EQ(rc(e3.map(u64(1) << 39, 0x1000, 0x1000)), -EINVAL);
	ASSERT_EQ(rc(e3.map((u64(1) << 39) - 0x40000000, 0x40000000, 0x40000000, kRW)), 0);
	EXPECT_EQ(e3.root()[511], 0x00400000400007fdu);
	// Splitting a block: pages (0b11) with the block's attributes.
	ASSERT_EQ(rc(e.split(0x200000, 0x200000, 0)), 0);
	EXPECT_EQ(e.raw(0x3ff000, 0), 0x00000000803ff7ffu);
	EXPECT_EQ(e.raw(0x200000, 1) & 0xfff, 0x3u);
}

TEST_F(PgtableEncoding, Arm16K)
{
	arm_common<ArmS2_16K_L3>(0x0000001000004000, 0x0000008000124000, 14);
	Env<ArmS2_16K_L3> e;
	// 32M blocks at the level above the page (25-bit span), none larger.
	const u64 M32 = u64(32) << 20;
	ASSERT_EQ(rc(e.map(64 * M32, 4 * M32, 0x0000000100000000, kRW)), 0);
	EXPECT_EQ(e.leaf(64 * M32).level, 1u);
	EXPECT_EQ(e.leaf(64 * M32).size, M32);
	EXPECT_EQ(e.raw(65 * M32, 1), 0x00400001020007fdu);
	// 64G aligned and sized: still 32M blocks (2048 of them under one table).
	ASSERT_EQ(rc(e.map(u64(64) << 30, u64(64) << 30, u64(64) << 30, kRW)), 0);
	EXPECT_EQ(e.leaf(u64(64) << 30).size, M32);
	EXPECT_EQ(e.raw(u64(64) << 30, 2) & 3, 3u); // a table, not a block
	// 2048-entry tables of 16K; the root too (11 bits).
	EXPECT_EQ(Env<ArmS2_16K_L3>::index((u64(64) << 30) + 2047 * M32, 1), 2047u);
	// 47-bit IPA.
	EXPECT_EQ(rc(e.map(u64(1) << 47, 0x4000, 0x4000)), -EINVAL);
	ASSERT_EQ(rc(e.map((u64(1) << 47) - 0x4000, 0x4000, 0x8000, kRW)), 0);
	EXPECT_EQ(e.root()[2047] & 3, 3u);
}

TEST_F(PgtableEncoding, Arm64K)
{
	arm_common<ArmS2_64K_L3>(0x0000040000010000, 0x0000008000130000, 16);
	Env<ArmS2_64K_L3> e;
	// 512M blocks at level 1 (29-bit span).
	const u64 M512 = u64(512) << 20, T4 = u64(1) << 42;
	ASSERT_EQ(rc(e.map(3 * M512, 2 * M512, 0x0000000400000000, kRW)), 0);
	EXPECT_EQ(e.leaf(3 * M512).size, M512);
	EXPECT_EQ(e.raw(4 * M512, 1), 0x00400004200007fdu);
	// The root has 64 entries of 4T each: the last is 63.
	const u64 last = 63 * T4;
	ASSERT_EQ(rc(e.map(last + 0x10000, 0x10000, 0x20000, kRW)), 0);
	EXPECT_EQ(e.root()[63] & 3, 3u);
	EXPECT_EQ(rc(e.map(64 * T4, 0x10000, 0x20000)), -EINVAL);
	EXPECT_EQ(rc(e.map(last + T4 - 0x10000, 0x20000, 0x20000)), -EINVAL);
	// Nothing past the 512 bytes of the root.
	auto *bytes = reinterpret_cast<unsigned char *>(e.root());
	for (size_t i = 512; i < kvmmu::kPageSize; i++)
		ASSERT_EQ(bytes[i], 0) << "byte " << i << " of the root page";
	EXPECT_EQ(e.stats().table_bytes, kvmmu::kPageSize + 3 * PageTable<ArmS2_64K_L3>::table_alloc_bytes());
	EXPECT_EQ(PageTable<ArmS2_64K_L3>::table_alloc_bytes(), u64(64) << 10);
	// 8192-entry leaf tables.
	EXPECT_EQ(Env<ArmS2_64K_L3>::index(last + 0x10000, 0), 1u);
	EXPECT_EQ(Env<ArmS2_64K_L3>::index(last + M512 - 0x10000, 0), 8191u);
}

// Power ISA v3.0B Book III 6.7.10.2, radix PDE/PTE in ISA bit numbering
// (bit 0 is the MSB; the value's bit 63 - n): V 0, L 1, SW 2, RPN 7:51,
// R 55, C 56, ATT 58:59 (00 normal, 10 non-idempotent I/O, 11 tolerant
// I/O), EAA 60:63 (privileged, read, write, execute); PDE NLB 4:55 and
// NLS 59:63. Stored big-endian.
template <class F>
void ppc_encoding(unsigned g, unsigned leaf_bits)
{
	Env<F> e;
	const u64 P = u64(1) << g, ia = (u64(1) << 39) + 5 * P;
	const u64 pa = 0x0000000123450000;
	ASSERT_EQ(rc(e.map(ia, P, pa, kRW)), 0);
	// V | L | RPN | R | C | read | write.
	const u64 want = 0xc000000123450186;
	EXPECT_EQ(e.raw(ia, 0), want);
	// The bytes in the table page, most significant first.
	const unsigned char be[8] = {0xc0, 0x00, 0x00, 0x01, 0x23, 0x45, 0x01, 0x86};
	u64 *slot = e.slot(ia, 0);
	ASSERT_NE(slot, nullptr);
	EXPECT_EQ(memcmp(slot, be, 8), 0);
	// Directory entries: V | NLB | NLS = log2 of the next table's entries
	// (13-bit root, then 9, 9, and 9 or 5 at the leaf level).
	const unsigned nls[4] = {0, leaf_bits, 9, 9};
	for (unsigned l = 3; l >= 1; l--) {
		u64 d = e.raw(ia, l);
		EXPECT_EQ(d >> 60, 0x8u) << "level " << l;
		EXPECT_EQ(d & 0xff, nls[l]) << "level " << l;
		EXPECT_EQ(d & 0x0fffffffffffff00 & ((u64(8) << nls[l]) - 1), 0u);
	}
	const unsigned char *rb = reinterpret_cast<const unsigned char *>(e.slot(ia, 3));
	EXPECT_EQ(rb[0], 0x80);
	EXPECT_EQ(rb[7], 9);
	// Read-only non-idempotent I/O: R | ATT 10 | read; no C.
	ASSERT_EQ(rc(e.map(ia + P, P, 0x0000000fe0000000, {kRead, MemType::device})), 0);
	EXPECT_EQ(e.raw(ia + P, 0), 0xc000000fe0000124u);
	// Tolerant I/O, RWX: R | C | ATT 11 | read | write | execute.
	ASSERT_EQ(rc(e.map(ia + 2 * P, P, 0x0000000fe0000000 + P, {kRWX, MemType::normal_nc})), 0);
	EXPECT_EQ(e.raw(ia + 2 * P, 0), (0xc000000fe0000000 + P) | 0x1b7);
	// RPN's highest bit is 56 (ISA bit 7).
	const u64 top = 0x01ffffffffffffff & ~(P - 1);
	ASSERT_EQ(rc(e.map(ia + 3 * P, P, top, kRO)), 0);
	EXPECT_EQ(e.raw(ia + 3 * P, 0), 0xc000000000000000 | top | 0x104);
	// 2M leaf at level 1 and 1G at level 2: the same leaf format.
	ASSERT_EQ(rc(e.map(0x40200000, 0x200000, 0x80200000, kRW)), 0);
	EXPECT_EQ(e.raw(0x40200000, 1), 0xc000000080200186u);
	ASSERT_EQ(rc(e.map(0x80000000, 0x40000000, 0x100000000, {kRWX, MemType::normal_wb})), 0);
	EXPECT_EQ(e.raw(0x80000000, 2), 0xc000000100000187u);
	// R and C as the MMU keeps them: aging clears R (bit 8), wrprotect
	// clears write (bit 1) and C (bit 7).
	EXPECT_TRUE(e.young_ok(ia, P));
	EXPECT_EQ(e.raw(ia, 0), want & ~u64(0x100));
	e.hw_set(ia, 0x100);
	ASSERT_EQ(rc(e.wrprotect(ia, P)), 0);
	EXPECT_EQ(e.raw(ia, 0), 0xc000000123450104u);
	EXPECT_FALSE(e.leaf(ia).dirty);
	// The 52-bit input range.
	EXPECT_EQ(rc(e.map(u64(1) << 52, P, pa)), -EINVAL);
	ASSERT_EQ(rc(e.map((u64(1) << 52) - P, P, pa, kRW)), 0);
	EXPECT_EQ(Env<F>::index((u64(1) << 52) - P, 3), 8191u);
	EXPECT_EQ(e.root()[8191] != 0, true);
	EXPECT_TRUE(e.check_tree());
}

TEST_F(PgtableEncoding, PpcRadix4K)
{
	ppc_encoding<PpcRadix4K>(12, 9);
	EXPECT_EQ(PageTable<PpcRadix4K>::table_alloc_bytes(), std::max<u64>(4096, kvmmu::kPageSize));
}

TEST_F(PgtableEncoding, PpcRadix64K)
{
	ppc_encoding<PpcRadix64K>(16, 5);
	// 32-entry (256-byte) leaf tables: a 2M directory entry covers 32
	// pages of 64K.
	Env<PpcRadix64K> e;
	ASSERT_EQ(rc(e.map(0x200000 + 0x10000, 31 * 0x10000, 0x210000, kRW)), 0);
	EXPECT_EQ(e.raw(0x200000, 1) & 0x1f, 5u);
	EXPECT_EQ(Env<PpcRadix64K>::index(0x3f0000, 0), 31u);
	EXPECT_EQ(e.raw(0x3f0000, 0), 0xc0000000003f0186u);
	EXPECT_FALSE(e.leaf(0x400000).mapped);
}

// ---------------------------------------------------------------------------
// Lock assertions: death tests (not run under TSan, see scripts/host.sh)
// ---------------------------------------------------------------------------

class PgtableDeathTest : public HostTest {
protected:
	template <class F>
	void check()
	{
		Env<F> e;
		const u64 P = Env<F>::page(), S1 = Env<F>::size(1);
		ASSERT_EQ(rc(e.map(S1, S1, u64(1) << 40)), 0);
		e.topup();
		auto *pt = e.pt;
		const char *shared = "lockdep_assert_held: rwlock 'lock' not held by this thread";
		const char *exclusive = "lockdep_assert_held_write: rwlock 'lock' not held by this thread";
		// No lock at all.
		EXPECT_DEATH((void)pt->map(0, P, 0, kRW), shared);
		EXPECT_DEATH((void)pt->get_leaf(S1), shared);
		EXPECT_DEATH((void)pt->test_clear_young(S1, P), shared);
		EXPECT_DEATH((void)pt->unmap(S1, P), exclusive);
		EXPECT_DEATH((void)pt->wrprotect(S1, P), exclusive);
		EXPECT_DEATH((void)pt->split(S1, P, 0), exclusive);
		EXPECT_DEATH((void)pt->collapse(S1, 1), exclusive);
		// Shared is not enough for the exclusive operations...
		EXPECT_DEATH(
			{
				kvmmu::ReadGuard g(e.lock);
				(void)pt->unmap(S1, P);
			},
			exclusive);
		EXPECT_DEATH(
			{
				kvmmu::ReadGuard g(e.lock);
				(void)pt->wrprotect(S1, P);
			},
			exclusive);
		EXPECT_DEATH(
			{
				kvmmu::ReadGuard g(e.lock);
				(void)pt->split(S1, S1, 0);
			},
			exclusive);
		EXPECT_DEATH(
			{
				kvmmu::ReadGuard g(e.lock);
				(void)pt->collapse(S1, 1);
			},
			exclusive);
		// ... and another thread's lock is not this thread's.
		EXPECT_DEATH(
			{
				kvmmu::ReadGuard g(e.lock);
				std::thread t([&] { (void)pt->map(0, P, 0, kRW); });
				t.join();
			},
			shared);
		// Shared suffices for map/get_leaf/test_clear_young, and write
		// for everything.
		{
			kvmmu::ReadGuard g(e.lock);
			EXPECT_EQ(rc(pt->map(0, P, 0, kRW)), 0);
			EXPECT_TRUE(pt->get_leaf(0).mapped);
			EXPECT_EQ(rc(pt->test_clear_young(0, P)), 0);
		}
		{
			kvmmu::WriteGuard g(e.lock);
			EXPECT_EQ(rc(pt->map(P, P, P, kRW)), 0);
			EXPECT_TRUE(pt->get_leaf(P).mapped);
			EXPECT_EQ(rc(pt->wrprotect(0, 2 * P)), 0);
			EXPECT_EQ(rc(pt->split(S1, S1, 0)), 0);
			EXPECT_EQ(rc(pt->collapse(S1, 1)), 0);
			EXPECT_EQ(rc(pt->unmap(0, 2 * P)), 0);
		}
	}
};

TEST_F(PgtableDeathTest, Ept4) { check<Ept4>(); }
TEST_F(PgtableDeathTest, Ept5) { check<Ept5>(); }
TEST_F(PgtableDeathTest, Arm4KL3) { check<ArmS2_4K_L3>(); }
TEST_F(PgtableDeathTest, Arm4KL4) { check<ArmS2_4K_L4>(); }
TEST_F(PgtableDeathTest, Arm16K) { check<ArmS2_16K_L3>(); }
TEST_F(PgtableDeathTest, Arm64K) { check<ArmS2_64K_L3>(); }
TEST_F(PgtableDeathTest, PpcRadix4K) { check<PpcRadix4K>(); }
TEST_F(PgtableDeathTest, PpcRadix64K) { check<PpcRadix64K>(); }

} // namespace
