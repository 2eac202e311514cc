// SPDX-License-Identifier: GPL-2.0
// The typed page-table cases, run for every format. They are registered
// here and instantiated per format family by pgtable_<family>_test.cpp, so
// the heavy instantiations compile in parallel (one translation unit each).
#pragma once

#include "pgtable_env.hpp"

namespace {

TYPED_TEST_SUITE_P(PgtableTest);

TYPED_TEST_P(PgtableTest, GeometryMatchesManual)
{
	using F = TypeParam;
	using PT = PageTable<F>;
	const Geo &g = this->G;
	EXPECT_EQ(F::levels, g.levels);
	EXPECT_EQ(F::page_shift, g.shift[0]);
	for (unsigned l = 0; l < g.levels; l++) {
		EXPECT_EQ(F::bits_at(l), g.bits[l]) << "level " << l;
		EXPECT_EQ(F::shift_of(l), g.shift[l]) << "level " << l;
		EXPECT_EQ(F::leaf_ok(l), l <= g.max_leaf) << "level " << l;
	}
	EXPECT_EQ(F::ia_bits, g.ia_bits);
	EXPECT_EQ(PT::kIaLimit, B(g.ia_bits));
	EXPECT_EQ(PT::kRootLevel, g.levels - 1);
	// Each table covers exactly what an entry one level up maps.
	for (unsigned l = 0; l + 1 < g.levels; l++)
		EXPECT_EQ(g.shift[l] + g.bits[l], g.shift[l + 1]);
	EXPECT_EQ(g.shift[g.levels - 1] + g.bits[g.levels - 1], g.ia_bits);
}

TYPED_TEST_P(PgtableTest, CreateAndDestroy)
{
	auto &e = *this->env;
	PtStats s = e.stats();
	EXPECT_EQ(s.tables, 1u);
	EXPECT_EQ(s.table_bytes, std::max<u64>(u64(8) << this->G.bits[this->G.levels - 1], kvmmu::kPageSize));
	EXPECT_EQ(s.tlb_flushes, 0u);
	EXPECT_EQ(s.bbm, 0u);
	EXPECT_TRUE(e.snapshot().empty());
	EXPECT_FALSE(e.leaf(0).mapped);
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, CreateFailsCleanly)
{
	using PT = PageTable<TypeParam>;
	kvmmu::RwLock lock;
	KVMMU_LOCK_INIT(lock);
	TableCache cache(PT::table_alloc_bytes());
	TestMmOps ops(cache);
	long live = kvmmu_host_live_allocs();
	for (long n : {0, 1}) { // the root pages, then the PageTable object
		kvmmu_host_fail_alloc_after(n);
		auto r = PT::create(ops, lock, gfp::kernel);
		kvmmu_host_fail_alloc_reset();
		EXPECT_EQ(rc(r), -ENOMEM) << "failing allocation " << n;
		EXPECT_EQ(kvmmu_host_live_allocs(), live);
	}
}

TYPED_TEST_P(PgtableTest, MapPicksLargestLeaf)
{
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), S1 = e.size(1), T = e.top();
	// Two pages, blocks up to the largest leaf, the largest leaf, one
	// level-1 block, three pages.
	const u64 ia = S1 - 2 * P, end = 2 * T + S1 + 3 * P, pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(ia, end - ia, pa + ia)), 0);
	auto want = greedy_leaves(g, ia, end - ia, pa + ia);
	size_t i = 0;
	unsigned top_leaves = 0, want_top = 0;
	for (auto &w : want)
		want_top += w.level == g.max_leaf;
	for (u64 a = ia; a < end; i++) {
		Leaf l = e.leaf(a);
		ASSERT_TRUE(l.mapped) << hex(a);
		ASSERT_LT(i, want.size());
		ASSERT_EQ(l.ia, want[i].ia) << "leaf " << i;
		ASSERT_EQ(l.level, want[i].level) << "leaf " << i << " at " << hex(a);
		EXPECT_EQ(l.size, S(g, l.level));
		EXPECT_EQ(l.oa, pa + a);
		top_leaves += l.level == g.max_leaf;
		a += l.size;
	}
	EXPECT_EQ(i, want.size());
	EXPECT_EQ(top_leaves, want_top);
	EXPECT_GE(top_leaves, 1u);
	// The sizes, literally: 1G on 4K granules and on 64K radix, 32M on the
	// 16K granule, 512M on the 64K granule.
	const u64 largest = g.name == std::string("arm16k_l3")	 ? u64(32) << 20
			    : g.name == std::string("arm64k_l3") ? u64(512) << 20
								 : u64(1) << 30;
	EXPECT_EQ(e.leaf(T).size, largest);
	EXPECT_EQ(e.leaf(T).level, g.max_leaf);
	EXPECT_FALSE(e.leaf(ia - P).mapped);
	EXPECT_FALSE(e.leaf(end).mapped);
	EXPECT_EQ(e.stats().tables, 1 + tables_for_leaves(g, want, want.size()));
	EXPECT_EQ(e.stats().bbm, 0u);
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, MapMisalignedOutputUsesBasePages)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1);
	// ia block-aligned, pa one page off: nothing but base pages.
	ASSERT_EQ(rc(e.map(S1, 2 * S1, (u64(1) << 40) + P)), 0);
	for (u64 a = S1; a < 3 * S1; a += P) {
		Leaf l = e.leaf(a);
		ASSERT_TRUE(l.mapped);
		ASSERT_EQ(l.level, 0u);
		ASSERT_EQ(l.oa, (u64(1) << 40) + P + (a - S1));
	}
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, UnmapFreesEmptiedTables)
{
	auto &e = *this->env;
	const unsigned levels = this->G.levels;
	const u64 P = e.page(), ia = this->root_boundary() + 5 * P;
	e.topup();
	long live = kvmmu_host_live_allocs();
	unsigned cached = e.cache.count();
	ASSERT_EQ(rc(e.map(ia, 2 * P, u64(1) << 32)), 0);
	// One table per level below the root, from the cache.
	EXPECT_EQ(e.stats().tables, levels);
	EXPECT_EQ(e.cache.count(), cached - (levels - 1));
	EXPECT_EQ(kvmmu_host_live_allocs(), live);
	EXPECT_TRUE(e.check_tree());

	// Without the helper's cache refill, to count pages exactly.
	auto unmap = [&](u64 a, u64 n) {
		e.ops.begin();
		kvmmu::WriteGuard g(e.lock);
		return e.pt->unmap(a, n);
	};
	ASSERT_EQ(rc(unmap(ia, P)), 0); // the leaf table keeps one entry
	EXPECT_EQ(e.stats().tables, levels);
	EXPECT_EQ(e.ops.nfree.load(), 0u);
	ASSERT_EQ(rc(unmap(ia + P, P)), 0); // now every table is empty
	EXPECT_EQ(e.stats().tables, 1u);
	EXPECT_EQ(e.ops.nfree.load(), levels - 1);
	EXPECT_EQ(e.ops.freed_before_flush.load(), 0u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	// Freed to the page allocator, not kept.
	EXPECT_EQ(kvmmu_host_live_allocs(), live - long(levels - 1));
	EXPECT_TRUE(e.snapshot().empty());
	EXPECT_TRUE(e.check_tree());

	// A covered table goes in one step: map a block's worth of pages, unmap
	// more than all of it.
	const u64 S1 = e.size(1);
	ASSERT_EQ(rc(e.map(S1, S1, (u64(1) << 32) + P)), 0);
	EXPECT_EQ(e.stats().tables, levels);
	ASSERT_EQ(rc(e.unmap(0, 4 * S1)), 0);
	EXPECT_EQ(e.stats().tables, 1u);
	EXPECT_TRUE(e.snapshot().empty());
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, UnmapOfPartOfBlockSplitsIt)
{
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), T = e.top(), ia = T, pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(ia, T, pa)), 0);
	ASSERT_EQ(e.leaf(ia).level, g.max_leaf);
	const u64 hole = ia + T / 2 + 3 * P;
	ASSERT_EQ(rc(e.unmap(hole, P)), 0);
	EXPECT_FALSE(e.leaf(hole).mapped);
	// One split per level down to the base pages, each break-before-make.
	EXPECT_EQ(e.stats().bbm, g.max_leaf);
	EXPECT_EQ(e.stats().tables, 1 + tables_for_leaves(g, greedy_leaves(g, ia, T, pa), 1) + g.max_leaf);
	// Everything else still maps what it did, at the largest level left.
	for (u64 a = ia; a < ia + T; a += (a >> g.shift[1]) == (hole >> g.shift[1]) ? P : e.size(1)) {
		if (a == hole)
			continue;
		Leaf l = e.leaf(a);
		ASSERT_TRUE(l.mapped) << hex(a);
		EXPECT_EQ(l.oa, pa + (a - ia));
		EXPECT_EQ(l.level, (a >> g.shift[1]) == (hole >> g.shift[1]) ? 0u : 1u) << hex(a);
		EXPECT_TRUE(l.attrs == kRW);
	}
	EXPECT_TRUE(e.check_tree());
}

// unmap() of part of a block needs a table for what stays mapped; without
// one it fails with -ENOMEM. What it removed before that is gone and
// invalidated (unmap() reports no progress); the block is as it was.
TYPED_TEST_P(PgtableTest, UnmapOfPartOfBlockWithoutTables)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(S1, 2 * S1, pa)), 0);
	ASSERT_EQ(e.leaf(S1).level, 1u);
	e.cache.drain();
	auto unmap = [&](u64 a, u64 n) {
		e.ops.begin();
		kvmmu::WriteGuard g(e.lock);
		return e.pt->unmap(a, n);
	};
	const auto snap = e.snapshot();
	EXPECT_EQ(rc(unmap(S1 + P, P)), -ENOMEM);
	EXPECT_EQ(e.snapshot(), snap);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	// The first block goes whole, the second needs a split.
	EXPECT_EQ(rc(unmap(S1, S1 + P)), -ENOMEM);
	EXPECT_FALSE(e.leaf(S1).mapped);
	EXPECT_FALSE(e.leaf(2 * S1 - P).mapped);
	EXPECT_EQ(e.leaf(2 * S1).oa, pa + S1);
	EXPECT_EQ(e.leaf(2 * S1).level, 1u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(S1, 2 * S1));
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, WriteProtect)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), ia = 4 * S1, pa = u64(1) << 40;
	// A level-1 block, then four base pages.
	ASSERT_EQ(rc(e.map(ia, S1 + 4 * P, pa)), 0);
	ASSERT_EQ(e.leaf(ia).level, 1u);
	const u64 raw_block = e.raw(ia, 1), raw_page = e.raw(ia + S1, 0);
	const PtStats before = e.stats();

	// From inside the block to the middle of the pages: the block is
	// protected whole, the pages in the range only.
	ASSERT_EQ(rc(e.wrprotect(ia + P, S1 + P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(ia, ia + S1 + 2 * P));
	EXPECT_EQ(e.stats().tlb_flushes, before.tlb_flushes + 1);
	EXPECT_EQ(e.stats().bbm, before.bbm);
	EXPECT_EQ(e.leaf(ia).attrs, kRO);
	EXPECT_EQ(e.leaf(ia + S1).attrs, kRO);
	EXPECT_EQ(e.leaf(ia + S1 + P).attrs, kRO);
	EXPECT_EQ(e.leaf(ia + S1 + 2 * P).attrs, kRW);
	EXPECT_EQ(e.leaf(ia + S1 + 3 * P).attrs, kRW);
	EXPECT_EQ(e.leaf(ia).oa, pa);
	EXPECT_EQ(e.leaf(ia).level, 1u);
	// Only the write permission (and what goes with it) changed.
	EXPECT_EQ(e.raw(ia, 1), raw_block & ~Hw<TypeParam>::wrprotect_clears);
	EXPECT_EQ(e.raw(ia + S1, 0), raw_page & ~Hw<TypeParam>::wrprotect_clears);
	EXPECT_FALSE(e.leaf(ia).dirty);

	// Nothing left to protect: no invalidation.
	ASSERT_EQ(rc(e.wrprotect(ia, S1 + 2 * P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	// An unmapped range: nothing either.
	ASSERT_EQ(rc(e.wrprotect(ia + 8 * S1, S1)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, TestClearYoung)
{
	using H = Hw<TypeParam>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), ia = 2 * S1, pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(ia, S1 + 8 * P, pa)), 0);
	EXPECT_TRUE(e.leaf(ia).young);
	EXPECT_TRUE(e.leaf(ia + S1 + P).young);
	const u64 raw_page = e.raw(ia + S1 + P, 0);
	EXPECT_TRUE(raw_page & H::young_bit);

	EXPECT_TRUE(e.young_ok(ia, S1 + 8 * P)); // fresh leaves are young
	EXPECT_EQ(e.ops.op_flushes(), 0u);	  // and aging needs no invalidation
	EXPECT_FALSE(e.young_ok(ia, S1 + 8 * P));
	EXPECT_FALSE(e.leaf(ia).young);
	EXPECT_FALSE(e.leaf(ia + S1 + P).young);
	// Exactly the accessed bit was cleared.
	EXPECT_EQ(e.raw(ia + S1 + P, 0), raw_page & ~H::young_bit);

	// The MMU marks one page accessed: only a range containing it is young.
	e.hw_set(ia + S1 + 5 * P, H::young_bit);
	EXPECT_FALSE(e.young_ok(ia, S1 + 5 * P));
	EXPECT_FALSE(e.young_ok(ia + S1 + 6 * P, 2 * P));
	EXPECT_TRUE(e.young_ok(ia + S1 + 4 * P, 2 * P));
	EXPECT_FALSE(e.young_ok(ia, S1 + 8 * P));
	// A block partly in the range counts (and is cleared) whole.
	e.hw_set(ia, H::young_bit);
	EXPECT_TRUE(e.young_ok(ia + S1 - P, P));
	EXPECT_FALSE(e.leaf(ia).young);
	// Nothing mapped: not young.
	EXPECT_FALSE(e.young_ok(ia + 16 * S1, S1));
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, GetLeaf)
{
	using H = Hw<TypeParam>;
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), T = e.top(), ia = 3 * T, pa = u64(5) << 40;
	const Attrs dev{kRead | kWrite, MemType::device};
	const Attrs rx{kRead | kExec, MemType::normal_nc};
	ASSERT_EQ(rc(e.map(ia, T, pa, dev)), 0);
	ASSERT_EQ(rc(e.map(ia + T, P, pa + (u64(1) << 30) + P, rx)), 0);

	Leaf l = e.leaf(ia + T / 2 + 3 * P + 8);
	EXPECT_TRUE(l.mapped);
	EXPECT_EQ(l.level, g.max_leaf);
	EXPECT_EQ(l.ia, ia);
	EXPECT_EQ(l.size, T);
	EXPECT_EQ(l.oa, pa + T / 2 + 3 * P + 8); // of the address looked up
	EXPECT_EQ(l.attrs, dev);
	EXPECT_TRUE(l.young);
	EXPECT_EQ(l.dirty, H::dirty_at_map(dev.prot));

	l = e.leaf(ia + T + 12);
	EXPECT_TRUE(l.mapped);
	EXPECT_EQ(l.level, 0u);
	EXPECT_EQ(l.ia, ia + T);
	EXPECT_EQ(l.size, P);
	EXPECT_EQ(l.oa, pa + (u64(1) << 30) + P + 12);
	EXPECT_EQ(l.attrs, rx);
	EXPECT_FALSE(l.dirty); // read-only: never dirty

	if (H::can_set_hw_dirty()) {
		EXPECT_FALSE(e.leaf(ia + T).dirty);
		// A read-only leaf cannot be written; use the writable block.
		e.hw_set(ia, H::dirty_bit);
		EXPECT_TRUE(e.leaf(ia + P).dirty);
	}
	EXPECT_FALSE(e.leaf(ia + T + P).mapped);
	EXPECT_FALSE(e.leaf(ia - P).mapped);
	EXPECT_FALSE(e.leaf(PageTable<TypeParam>::kIaLimit).mapped);
	EXPECT_FALSE(e.leaf(~u64(0)).mapped);
}

TYPED_TEST_P(PgtableTest, RemapSameTranslationIsNoop)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(S1, S1 + 4 * P, pa)), 0);
	EXPECT_TRUE(e.young_ok(S1, S1 + 4 * P));
	const auto snap = e.snapshot();
	const PtStats before = e.stats();
	// Same output, same attributes: nothing written, A/D kept (still old).
	u64 done = 0;
	ASSERT_EQ(rc(e.map(S1, S1 + 4 * P, pa, kRW, &done)), 0);
	EXPECT_EQ(done, S1 + 4 * P);
	EXPECT_EQ(e.snapshot(), snap);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	EXPECT_EQ(e.stats().bbm, before.bbm);
	EXPECT_FALSE(e.young_ok(S1, S1 + 4 * P));
}

TYPED_TEST_P(PgtableTest, RemapDifferentOutputFlushesOnce)
{
	auto &e = *this->env;
	const bool arm = Hw<TypeParam>::kind == Kind::arm;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40, pb = u64(2) << 40;
	ASSERT_EQ(rc(e.map(S1, S1 + 8 * P, pa)), 0);
	PtStats before = e.stats();
	// One page to a new output: Arm breaks before make, the others write
	// in place; one invalidation either way.
	ASSERT_EQ(rc(e.map(S1 + S1 + 2 * P, P, pb)), 0);
	EXPECT_EQ(e.leaf(S1 + S1 + 2 * P).oa, pb);
	EXPECT_EQ(e.stats().bbm - before.bbm, arm ? 1u : 0u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(S1 + S1 + 2 * P, S1 + S1 + 3 * P));
	// New permissions on the block: no format breaks for that.
	before = e.stats();
	ASSERT_EQ(rc(e.map(S1, S1, pa, kRO)), 0);
	EXPECT_EQ(e.leaf(S1).attrs, kRO);
	EXPECT_EQ(e.leaf(S1).level, 1u);
	EXPECT_EQ(e.stats().bbm - before.bbm, 0u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(S1, 2 * S1));
	// A new memory type on the same output does need the break on Arm.
	before = e.stats();
	const Attrs nc{kRead, MemType::normal_nc};
	ASSERT_EQ(rc(e.map(S1, S1, pa, nc)), 0);
	EXPECT_EQ(e.leaf(S1).attrs, nc);
	EXPECT_EQ(e.stats().bbm - before.bbm, arm ? 1u : 0u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	ASSERT_EQ(rc(e.map(S1, S1, pa, kRO)), 0);
	// Four pages at once: batched where the format allows.
	before = e.stats();
	ASSERT_EQ(rc(e.map(S1 + S1 + 4 * P, 4 * P, pb + 4 * P)), 0);
	EXPECT_EQ(e.stats().bbm - before.bbm, arm ? 4u : 0u);
	EXPECT_EQ(e.ops.op_flushes(), arm ? 4u : 1u);
	EXPECT_TRUE(e.ops.covered(S1 + S1 + 4 * P, S1 + S1 + 8 * P));
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, TlbFlushBatching)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), ia = this->root_boundary() - 32 * P, pa = u64(1) << 40;
	// Mapping into empty entries invalidates nothing.
	ASSERT_EQ(rc(e.map(ia, 64 * P, pa + P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	EXPECT_EQ(e.stats().tlb_flushes, 0u);
	// Pages on both sides keep the leaf tables alive.
	ASSERT_EQ(rc(e.unmap(ia + P, 62 * P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	auto r = e.ops.flush_ranges();
	ASSERT_EQ(r.size(), 1u);
	EXPECT_EQ(r[0], std::make_pair(ia + P, ia + 63 * P));
	// Unmapping nothing invalidates nothing.
	ASSERT_EQ(rc(e.unmap(ia + P, 62 * P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	// Emptying the tables under two root entries: one invalidation per
	// removed range (the two pages left, not the gap between them: the
	// invalidation of a removed leaf also drops the walk-cache entries of
	// the tables above it), and the tables are freed after them.
	ASSERT_EQ(rc(e.unmap(ia, 64 * P)), 0);
	r = e.ops.flush_ranges();
	if (TypeParam::bits_at(0) > 5) {
		EXPECT_EQ(e.ops.op_flushes(), 2u);
		ASSERT_EQ(r.size(), 2u);
		EXPECT_EQ(r[0], std::make_pair(ia, ia + P));
		EXPECT_EQ(r[1], std::make_pair(ia + 63 * P, ia + 64 * P));
	} else {
		// 32-entry leaf tables (ppc 64K): the range covers both whole,
		// and a table removed whole is invalidated whole.
		EXPECT_EQ(e.ops.op_flushes(), 1u);
		ASSERT_EQ(r.size(), 1u);
		EXPECT_EQ(r[0], std::make_pair(ia, ia + 64 * P));
	}
	EXPECT_EQ(e.ops.freed_before_flush.load(), 0u);
	EXPECT_EQ(e.ops.nfree.load(), 2 * (this->G.levels - 1));
	EXPECT_EQ(e.stats().tables, 1u);

	// Write-protect many pages and blocks: one invalidation.
	ASSERT_EQ(rc(e.map(8 * S1, 4 * S1, pa)), 0);
	ASSERT_EQ(rc(e.map(12 * S1, 100 * P, pa + 4 * S1 + P)), 0);
	ASSERT_EQ(rc(e.wrprotect(8 * S1, 4 * S1 + 100 * P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(8 * S1, 12 * S1 + 100 * P));
	// Aging never invalidates.
	EXPECT_TRUE(e.young_ok(8 * S1, 4 * S1 + 100 * P));
	EXPECT_EQ(e.ops.op_flushes(), 0u);
	// Unmap of blocks and pages: one.
	ASSERT_EQ(rc(e.unmap(8 * S1, 4 * S1 + 100 * P)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_EQ(e.ops.freed_before_flush.load(), 0u);
	EXPECT_EQ(e.stats().tables, 1u);
	EXPECT_TRUE(e.check_tree());
}

// More emptied tables than an operation tracks (Op::kDeferred, 32): the
// engine invalidates early so that it can free them; every table is still
// freed only after an invalidation that covers it. Documents how many
// invalidations that takes (the contract's "one per operation" holds only
// up to 32 unlinked tables).
TYPED_TEST_P(PgtableTest, UnmapOfManyTablesFreesOnlyAfterInvalidation)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	// 40 leaf tables under one level-2 entry, not covering all of it.
	const u64 ia = S1, n = 40;
	e.map_all(ia, n * S1, pa + P);
	const u64 tables = e.stats().tables;
	ASSERT_EQ(e.leaf(ia).level, 0u);
	ASSERT_EQ(rc(e.unmap(ia, n * S1)), 0);
	EXPECT_EQ(e.ops.freed_before_flush.load(), 0u);
	EXPECT_EQ(e.stats().tables, 1u);
	const u64 freed = tables - 1;
	EXPECT_GE(e.ops.op_flushes(), 1u);
	EXPECT_LE(e.ops.op_flushes(), 1 + freed / 32);
	EXPECT_TRUE(e.ops.covered(ia, ia + n * S1));
	::testing::Test::RecordProperty("flushes_for_unmap_of_40_tables", std::to_string(e.ops.op_flushes()));
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, SplitAndCollapseRoundTrip)
{
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), T = e.top(), S1 = e.size(1), ia = 2 * T, pa = u64(3) << 40;
	ASSERT_EQ(rc(e.map(ia, T, pa)), 0);
	e.topup();
	const u64 tables0 = e.stats().tables;
	const long live0 = kvmmu_host_live_allocs();
	const unsigned top = g.max_leaf;

	// One level down: one table, one break-before-make.
	ASSERT_EQ(rc(e.split(ia, T, top - 1)), 0);
	EXPECT_EQ(e.stats().tables, tables0 + 1);
	EXPECT_EQ(e.stats().bbm, 1u);
	EXPECT_EQ(e.ops.op_flushes(), 1u);
	EXPECT_TRUE(e.ops.covered(ia, ia + T));
	EXPECT_EQ(e.leaf(ia + T - P).level, top - 1);
	EXPECT_EQ(e.leaf(ia + T - P).oa, pa + T - P);
	// Splitting what is already small enough changes nothing.
	auto snap = e.snapshot();
	ASSERT_EQ(rc(e.split(ia, T, top - 1)), 0);
	EXPECT_EQ(e.snapshot(), snap);
	EXPECT_EQ(e.ops.op_flushes(), 0u);

	// All the way to base pages.
	e.split_all(ia, T, 0);
	const u64 children = top == 2 ? B(g.bits[1]) : 0; // level-1 leaves split
	EXPECT_EQ(e.stats().tables, tables0 + 1 + children);
	EXPECT_EQ(e.stats().bbm, 1 + children);
	for (u64 a = ia; a < ia + T; a += P) {
		Leaf l = e.leaf(a);
		ASSERT_TRUE(l.mapped && l.level == 0 && l.oa == pa + (a - ia) && l.attrs == kRW) << hex(a);
	}
	EXPECT_TRUE(e.check_tree());

	// Collapse back, one level at a time.
	const u64 bbm = e.stats().bbm;
	if (top == 2) {
		for (u64 a = ia; a < ia + T; a += S1)
			ASSERT_EQ(rc(e.collapse(a + P, 1)), 0) << hex(a);
		EXPECT_EQ(e.stats().tables, tables0 + 1);
		EXPECT_EQ(e.leaf(ia + S1).level, 1u);
	}
	ASSERT_EQ(rc(e.collapse(ia + T - P, top)), 0);
	EXPECT_EQ(e.ops.op_flushes(), 1u); // the break-before-make's
	EXPECT_EQ(e.ops.freed_before_flush.load(), 0u);
	EXPECT_EQ(e.stats().bbm, bbm + 1 + children);
	EXPECT_EQ(e.stats().tables, tables0);
	Leaf l = e.leaf(ia + 7 * P);
	EXPECT_EQ(l.level, top);
	EXPECT_EQ(l.ia, ia);
	EXPECT_EQ(l.oa, pa + 7 * P);
	EXPECT_EQ(l.attrs, kRW);
	// The tables went back to the page allocator (the cache is unchanged).
	e.topup();
	EXPECT_EQ(kvmmu_host_live_allocs(), live0);
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, SplitOnlyTouchesBlocksInRange)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(S1, 4 * S1, pa)), 0);
	// Blocks 1 and 2 overlap the range; 0 and 3 stay.
	ASSERT_EQ(rc(e.split(2 * S1 + P, S1 + P, 0)), 0);
	EXPECT_EQ(e.leaf(S1).level, 1u);
	EXPECT_EQ(e.leaf(2 * S1).level, 0u);
	EXPECT_EQ(e.leaf(2 * S1 + S1 / 2).level, 0u);
	EXPECT_EQ(e.leaf(3 * S1).level, 0u);
	EXPECT_EQ(e.leaf(3 * S1 + P).level, 0u);
	EXPECT_EQ(e.leaf(4 * S1).level, 1u);
	EXPECT_EQ(e.stats().bbm, 2u);
	for (u64 a = S1; a < 5 * S1; a += P)
		ASSERT_EQ(e.leaf(a).oa, pa + (a - S1)) << hex(a);
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, CollapseRejects)
{
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), ia = 4 * S1, pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(ia, S1, pa)), 0);
	ASSERT_EQ(rc(e.split(ia, S1, 0)), 0);
	auto rejected = [&](const char *why) {
		const u64 bbm = e.stats().bbm; // Arm remaps above break before make
		auto snap = e.snapshot();
		EXPECT_EQ(rc(e.collapse(ia, 1)), -EINVAL) << why;
		EXPECT_EQ(e.snapshot(), snap) << why;
		EXPECT_EQ(e.ops.op_flushes(), 0u) << why;
		EXPECT_EQ(e.stats().bbm, bbm) << why;
	};
	// A child elsewhere.
	ASSERT_EQ(rc(e.map(ia + 5 * P, P, pa + 6 * P)), 0);
	rejected("non-contiguous");
	ASSERT_EQ(rc(e.map(ia + 5 * P, P, pa + 5 * P)), 0);
	// Different permissions, then a different memory type.
	ASSERT_EQ(rc(e.map(ia + S1 - P, P, pa + S1 - P, kRO)), 0);
	rejected("mixed permissions");
	ASSERT_EQ(rc(e.map(ia + S1 - P, P, pa + S1 - P, {kRead | kWrite, MemType::normal_nc})), 0);
	rejected("mixed memory types");
	ASSERT_EQ(rc(e.map(ia + S1 - P, P, pa + S1 - P)), 0);
	// A hole.
	ASSERT_EQ(rc(e.unmap(ia, P)), 0);
	rejected("missing child");
	ASSERT_EQ(rc(e.map(ia, P, pa)), 0);
	// Nothing changed for good: it collapses now.
	ASSERT_EQ(rc(e.collapse(ia, 1)), 0);
	EXPECT_EQ(e.leaf(ia).level, 1u);
	// Already a block; an empty entry; a level without blocks.
	EXPECT_EQ(rc(e.collapse(ia, 1)), -EINVAL);
	EXPECT_EQ(rc(e.collapse(ia + 8 * S1, 1)), -EINVAL);
	EXPECT_EQ(rc(e.collapse(ia, 0)), -EINVAL);
	EXPECT_EQ(rc(e.collapse(ia, this->G.max_leaf + 1)), -EINVAL);
	EXPECT_EQ(rc(e.collapse(PageTable<TypeParam>::kIaLimit, 1)), -EINVAL);

	// Contiguous but not aligned to the block.
	ASSERT_EQ(rc(e.map(ia + 2 * S1, S1, pa + P)), 0);
	ASSERT_EQ(e.leaf(ia + 2 * S1).level, 0u);
	auto snap = e.snapshot();
	EXPECT_EQ(rc(e.collapse(ia + 2 * S1, 1)), -EINVAL);
	EXPECT_EQ(e.snapshot(), snap);

	// One level at a time: base pages under the level-2 entry are not
	// level-1 leaves.
	if (this->G.max_leaf == 2) {
		const u64 T = e.top();
		ASSERT_EQ(rc(e.map(4 * T, T, pa + 4 * T)), 0);
		ASSERT_EQ(rc(e.split(4 * T, S1, 0)), 0);
		snap = e.snapshot();
		EXPECT_EQ(rc(e.collapse(4 * T, 2)), -EINVAL);
		EXPECT_EQ(e.snapshot(), snap);
		ASSERT_EQ(rc(e.collapse(4 * T, 1)), 0);
		ASSERT_EQ(rc(e.collapse(4 * T, 2)), 0);
		EXPECT_EQ(e.leaf(4 * T + P).level, 2u);
	}
	EXPECT_TRUE(e.check_tree());
}

// Split and collapse keep the accessed and dirty state of what they replace.
TYPED_TEST_P(PgtableTest, SplitAndCollapseKeepAccessedAndDirty)
{
	using H = Hw<TypeParam>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	const u64 n = S1 / P;
	auto all = [&](u64 ia, auto pred) {
		for (u64 a = ia; a < ia + S1; a += P)
			if (!pred(e.leaf(a)))
				return false;
		return true;
	};

	// Old block -> old children; young block -> young children.
	ASSERT_EQ(rc(e.map(S1, 2 * S1, pa)), 0);
	EXPECT_TRUE(e.young_ok(S1, 2 * S1));
	e.hw_set(2 * S1, H::young_bit);
	ASSERT_EQ(rc(e.split(S1, 2 * S1, 0)), 0);
	EXPECT_TRUE(all(S1, [](const Leaf &l) { return !l.young; }));
	EXPECT_TRUE(all(2 * S1, [](const Leaf &l) { return l.young; }));
	// Collapse: young if any child is.
	ASSERT_EQ(rc(e.collapse(S1, 1)), 0);
	EXPECT_FALSE(e.leaf(S1).young);
	EXPECT_TRUE(e.young_ok(2 * S1, S1));
	e.hw_set(2 * S1 + (n / 2) * P, H::young_bit);
	ASSERT_EQ(rc(e.collapse(2 * S1, 1)), 0);
	EXPECT_TRUE(e.leaf(2 * S1).young);

	// Dirty: as map() leaves it, then as the MMU sets it.
	const bool d0 = H::dirty_at_map(kRW.prot);
	ASSERT_EQ(rc(e.map(4 * S1, 2 * S1, pa)), 0);
	EXPECT_EQ(e.leaf(4 * S1).dirty, d0);
	if (H::can_set_hw_dirty())
		e.hw_set(5 * S1, H::dirty_bit);
	const bool d1 = H::can_set_hw_dirty() ? true : d0;
	ASSERT_EQ(e.leaf(5 * S1).dirty, d1);
	ASSERT_EQ(rc(e.split(4 * S1, 2 * S1, 0)), 0);
	EXPECT_TRUE(all(4 * S1, [&](const Leaf &l) { return l.dirty == d0; }));
	EXPECT_TRUE(all(5 * S1, [&](const Leaf &l) { return l.dirty == d1; })) << "split lost the dirty state";
	ASSERT_EQ(rc(e.collapse(4 * S1, 1)), 0);
	ASSERT_EQ(rc(e.collapse(5 * S1, 1)), 0);
	EXPECT_EQ(e.leaf(4 * S1).dirty, d0);
	EXPECT_EQ(e.leaf(5 * S1).dirty, d1) << "collapse lost the dirty state";
	// One dirty child makes a dirty block.
	if (H::can_set_hw_dirty()) {
		ASSERT_EQ(rc(e.map(8 * S1, S1, pa + P)), 0); // base pages
		ASSERT_EQ(rc(e.map(8 * S1, S1, pa)), 0);     // contiguous now
		ASSERT_EQ(e.leaf(8 * S1).level, 0u);
		EXPECT_EQ(e.leaf(8 * S1 + 3 * P).dirty, d0);
		e.hw_set(8 * S1 + 3 * P, H::dirty_bit);
		ASSERT_EQ(rc(e.collapse(8 * S1, 1)), 0);
		EXPECT_TRUE(e.leaf(8 * S1).dirty) << "collapse lost a child's dirty bit";
	}
	EXPECT_TRUE(e.check_tree());
}

TYPED_TEST_P(PgtableTest, BadInputChangesNothing)
{
	using F = TypeParam;
	using PT = PageTable<F>;
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40, lim = B(g.ia_bits);
	ASSERT_EQ(rc(e.map(S1, S1 + 4 * P, pa)), 0);
	e.topup();
	const auto snap = e.snapshot();
	const PtStats st = e.stats();
	const unsigned cached = e.cache.count();
	const u64 flushes = e.ops.flushes.load();
	auto unchanged = [&](const std::string &what) {
		EXPECT_EQ(e.snapshot(), snap) << what;
		EXPECT_EQ(e.stats().tables, st.tables) << what;
		EXPECT_EQ(e.stats().tlb_flushes, st.tlb_flushes) << what;
		EXPECT_EQ(e.stats().bbm, st.bbm) << what;
		EXPECT_EQ(e.cache.count(), cached) << what;
		EXPECT_EQ(e.ops.flushes.load(), flushes) << what;
	};
	auto map = [&](u64 ia, u64 size, u64 p, Attrs a, const std::string &what) {
		u64 done = 12345;
		kvmmu::ReadGuard gd(e.lock);
		EXPECT_EQ(rc(e.pt->map(ia, size, p, a, &done)), -EINVAL) << what;
		EXPECT_EQ(done, 0u) << what;
	};
	struct Range {
		u64 ia, size;
		const char *what;
	};
	const Range bad[] = {
		{S1 + P / 2, P, "unaligned ia"},
		{S1 + 8, P, "unaligned ia (8)"},
		{S1, P + P / 2, "unaligned size"},
		{S1, 1, "size 1"},
		{S1, 0, "size 0"},
		{lim, P, "ia at the limit"},
		{lim - P, 2 * P, "range across the limit"},
		{lim - P, ~u64(0) & ~(P - 1), "range wrapping around"},
		{P, ~u64(0) & ~(P - 1), "size near 2^64"},
		{~u64(0) & ~(P - 1), P, "ia near 2^64"},
	};
	for (const Range &r : bad) {
		map(r.ia, r.size, pa, kRW, std::string("map: ") + r.what);
		{
			kvmmu::WriteGuard gd(e.lock);
			EXPECT_EQ(rc(e.pt->unmap(r.ia, r.size)), -EINVAL) << r.what;
			EXPECT_EQ(rc(e.pt->wrprotect(r.ia, r.size)), -EINVAL) << r.what;
			u64 done = 1;
			EXPECT_EQ(rc(e.pt->split(r.ia, r.size, 0, &done)), -EINVAL) << r.what;
			EXPECT_EQ(done, 0u);
		}
		{
			kvmmu::ReadGuard gd(e.lock);
			EXPECT_EQ(rc(e.pt->test_clear_young(r.ia, r.size)), -EINVAL) << r.what;
		}
		unchanged(r.what);
	}
	// The last page below the limit is fine (checked further down).
	map(S1, P, pa + P / 2, kRW, "unaligned pa");
	map(S1, P, pa + 8, kRW, "unaligned pa (8)");
	map(S1, 2 * P, ~u64(0) & ~(P - 1), kRW, "pa + size wraps");
	map(S1, P, B(g.oa_bits), kRW, "pa beyond the output-address size");
	map(S1, 2 * P, B(g.oa_bits) - P, kRW, "pa range beyond the output-address size");
	map(S1, P, pa, {0, MemType::normal_wb}, "prot 0");
	map(S1, P, pa, {kRead | (1u << 3), MemType::normal_wb}, "unknown prot bit");
	if (Hw<F>::kind == Kind::ept) {
		map(S1, P, pa, {kWrite, MemType::normal_wb}, "EPT write without read");
		map(S1, P, pa, {kWrite | kExec, MemType::normal_wb}, "EPT write+exec without read");
	}
	unchanged("map");
	{
		kvmmu::WriteGuard gd(e.lock);
		EXPECT_EQ(rc(e.pt->split(S1, S1, g.levels - 1)), -EINVAL) << "split to the root level";
		EXPECT_EQ(rc(e.pt->split(S1, S1, g.levels)), -EINVAL) << "split beyond the root";
		if (g.max_leaf + 1 < g.levels - 1) {
			EXPECT_EQ(rc(e.pt->split(S1, S1, g.max_leaf + 1)), -EINVAL) << "split to a blockless level";
		}
		EXPECT_EQ(rc(e.pt->collapse(S1, 0)), -EINVAL);
		EXPECT_EQ(rc(e.pt->collapse(S1, g.max_leaf + 1)), -EINVAL);
		EXPECT_EQ(rc(e.pt->collapse(S1, g.levels)), -EINVAL);
		EXPECT_EQ(rc(e.pt->collapse(lim, 1)), -EINVAL);
	}
	unchanged("split/collapse");
	EXPECT_FALSE(e.leaf(lim).mapped);

	// The edges of what is allowed work.
	const u64 top_pa = B(g.oa_bits) - P;
	ASSERT_EQ(rc(e.map(lim - P, P, top_pa, kRO)), 0);
	Leaf l = e.leaf(lim - P);
	EXPECT_TRUE(l.mapped);
	EXPECT_EQ(l.oa, top_pa);
	EXPECT_EQ(Hw<F>::leaf_oa(e.raw(lim - P, 0)), top_pa);
	if (Hw<F>::kind == Kind::ept) {
		ASSERT_EQ(rc(e.map(lim - 2 * P, P, pa, {kExec, MemType::normal_wb})), 0);
		EXPECT_EQ(e.leaf(lim - 2 * P).attrs.prot, kExec);
	}
	ASSERT_EQ(rc(e.unmap(lim - 2 * P, 2 * P)), 0);
	EXPECT_TRUE(e.check_tree());
	EXPECT_EQ(PT::kIaLimit, lim);
}

// map() in steps of one more table than before: -ENOMEM until it has all
// it needs, exactly [ia, ia + done) mapped each time, nothing leaked.
TYPED_TEST_P(PgtableTest, MapOomStepping)
{
	using F = TypeParam;
	const Geo &g = this->G;
	using E = Env<F>;
	const u64 P = E::page(), S1 = E::size(1), T = E::top();
	// Below a root-entry boundary: two pages; above it: the largest leaf,
	// a level-1 block, three pages.
	const u64 b = this->root_boundary(), ia = b - 2 * P, size = 2 * P + T + S1 + 3 * P;
	const u64 pa = (u64(1) << 40) - 2 * P;
	const auto leaves = greedy_leaves(g, ia, size, pa);
	const unsigned k = tables_for_leaves(g, leaves, leaves.size());
	ASSERT_LE(k, TableCache::kCapacity);
	EXPECT_EQ(k, 2 * (g.levels - 1)); // a chain of tables under each root entry

	this->env.reset(); // this test makes its own
	u64 last_done = 0;
	for (unsigned n = 0; n <= k; n++) {
		const long live = kvmmu_host_live_allocs();
		{
			E e;
			ASSERT_TRUE(e.cache.topup(n, gfp::kernel).ok());
			u64 done = ~u64(0);
			Result<void> r = Result<void>();
			{
				kvmmu::ReadGuard gd(e.lock);
				r = e.pt->map(ia, size, pa, kRW, &done);
			}
			// The leaves whose tables fit in n.
			size_t fit = 0;
			while (fit < leaves.size() && tables_for_leaves(g, leaves, fit + 1) <= n)
				fit++;
			const u64 want = fit == leaves.size() ? size : leaves[fit].ia - ia;
			if (n < k) {
				EXPECT_EQ(rc(r), -ENOMEM) << n << " tables";
			} else {
				EXPECT_EQ(rc(r), 0) << n << " tables";
			}
			EXPECT_EQ(done, want) << n << " tables";
			EXPECT_GE(done, last_done);
			last_done = done;
			for (const RefLeaf &rl : leaves) {
				for (u64 a : {rl.ia, rl.ia + S(g, rl.level) - P}) {
					Leaf l = e.leaf(a);
					if (a < ia + done) {
						EXPECT_TRUE(l.mapped && l.oa == pa + (a - ia) && l.level == rl.level)
							<< n << " tables, " << hex(a);
					} else {
						EXPECT_FALSE(l.mapped) << n << " tables, " << hex(a);
					}
				}
			}
			EXPECT_FALSE(e.leaf(ia - P).mapped);
			EXPECT_FALSE(e.leaf(ia + size).mapped);
			EXPECT_EQ(e.cache.count(), 0u) << n << " tables"; // all used (or given back)
			EXPECT_TRUE(e.check_tree());
			// The caller's retry completes the mapping.
			if (n < k) {
				ASSERT_EQ(rc(e.map(ia + done, size - done, pa + done)), 0);
				EXPECT_EQ(e.leaf(ia + size - P).oa, pa + size - P);
			}
		}
		EXPECT_EQ(kvmmu_host_live_allocs(), live) << n << " tables";
	}
	EXPECT_EQ(last_done, size);
}

// split() likewise: -ENOMEM until it has its tables, [ia, ia + done)
// split, every translation unchanged throughout, nothing leaked.
TYPED_TEST_P(PgtableTest, SplitOomStepping)
{
	using F = TypeParam;
	const Geo &g = this->G;
	using E = Env<F>;
	const u64 P = E::page(), S1 = E::size(1), T = E::top();
	const unsigned top = g.max_leaf;
	const u64 base = T, pa = u64(1) << 40;
	struct Case {
		u64 ia, size;
		unsigned to;
		unsigned k; // tables needed, by hand
	};
	std::vector<Case> cases = {
		// The last page of block 0, block 1, the first page of block 2.
		{base + T - P, T + 2 * P, top - 1, 3},
	};
	if (top == 2) // 1G -> 2M, then two 2M -> 4K, for both 1G blocks
		cases.push_back({base + T - S1 - P, 2 * S1 + 2 * P, 0, 6});

	this->env.reset();
	for (const Case &c : cases) {
		u64 last_done = 0;
		for (unsigned n = 0; n <= c.k; n++) {
			const long live = kvmmu_host_live_allocs();
			{
				E e;
				e.map_all(base, 3 * T, pa);
				ASSERT_EQ(e.leaf(base + T).level, top);
				e.cache.drain();
				ASSERT_TRUE(e.cache.topup(n, gfp::kernel).ok());
				u64 done = ~u64(0);
				Result<void> r = Result<void>();
				{
					kvmmu::WriteGuard gd(e.lock);
					r = e.pt->split(c.ia, c.size, c.to, &done);
				}
				if (n < c.k)
					EXPECT_EQ(rc(r), -ENOMEM) << n << " tables";
				else
					EXPECT_EQ(rc(r), 0) << n << " tables";
				EXPECT_LE(done, c.size);
				EXPECT_GE(done, last_done);
				last_done = done;
				// Split below ia + done; the leaf at ia + done is not.
				for (u64 a = c.ia; a < c.ia + done; a += P) {
					Leaf l = e.leaf(a);
					ASSERT_TRUE(l.mapped && l.level <= c.to) << n << " tables, " << hex(a);
					a = std::max(a, l.ia + l.size - P);
				}
				if (done < c.size) {
					EXPECT_GT(e.leaf(c.ia + done).level, c.to) << n << " tables";
				}
				// Every translation as it was.
				for (u64 a = base; a < base + 3 * T; a += S1 / 4 + P) {
					Leaf l = e.leaf(a);
					ASSERT_TRUE(l.mapped && l.oa == pa + (a - base) && l.attrs == kRW) << hex(a);
				}
				for (u64 a = c.ia - 2 * P; a < c.ia + c.size + 2 * P; a += P) {
					Leaf l = e.leaf(a);
					ASSERT_TRUE(l.mapped && l.oa == pa + (a - base)) << hex(a);
					if (a > c.ia + 2 * P && a + 4 * P < c.ia + c.size)
						a = std::max(a, std::min(l.ia + l.size, c.ia + c.size - 4 * P) - P);
				}
				EXPECT_EQ(e.cache.count(), 0u);
				EXPECT_TRUE(e.check_tree());
			}
			EXPECT_EQ(kvmmu_host_live_allocs(), live) << n << " tables";
		}
		EXPECT_EQ(last_done, c.size);
	}
}

// ---------------------------------------------------------------------------
// What unmap() hands back (LeafSink), the caller's own table cache, new
// tables built privately, and A/D bits around collapse()'s break
// ---------------------------------------------------------------------------

struct Removed {
	u64 ia, size, oa;
	Attrs a;
	bool young, dirty;
	bool operator<(const Removed &o) const { return ia < o.ia; }
	bool operator==(const Removed &o) const
	{
		return ia == o.ia && size == o.size && oa == o.oa && a == o.a && young == o.young && dirty == o.dirty;
	}
};
std::ostream &operator<<(std::ostream &s, const Removed &r)
{
	return s << hex(r.ia) << "+" << hex(r.size) << " -> " << hex(r.oa) << " " << attrs_str(r.a)
		 << (r.young ? " young" : " old") << (r.dirty ? " dirty" : " clean");
}

class RecordingSink final : public LeafSink {
public:
	void removed(u64 ia, u64 size, u64 oa, Attrs a, bool young, bool dirty) override
	{
		v.push_back({ia, size, oa, a, young, dirty});
	}
	std::vector<Removed> v;
};

// What a removed leaf with the raw value `raw` must be reported as, decoded
// by hand: accessed is EPT A, Arm AF, radix R; dirty is EPT D, radix C,
// and on Arm stage 2 (no hardware dirty state here) S2AP write, bit 7.
template <class F>
Removed removed_as(u64 ia, unsigned level, u64 oa, u64 raw, Attrs a)
{
	using H = Hw<F>;
	const bool dirty = H::kind == Kind::arm ? bool(raw & B(7)) : bool(raw & H::dirty_bit);
	return {ia, S(Spec<F>::geo, level), oa, a, bool(raw & H::young_bit), dirty};
}

::testing::AssertionResult same_reports(std::vector<Removed> got, std::vector<Removed> want)
{
	std::sort(got.begin(), got.end());
	std::sort(want.begin(), want.end());
	for (size_t i = 0; i < std::min(got.size(), want.size()); i++)
		if (!(got[i] == want[i]))
			return ::testing::AssertionFailure() << "report " << i << ": " << got[i] << ", want " << want[i];
	if (got.size() != want.size())
		return ::testing::AssertionFailure() << got.size() << " reports, want " << want.size();
	return ::testing::AssertionSuccess();
}

// Write-protection reports the leaves that were dirty when they lost write
// access (on Arm, dirty is writable: every writable leaf), with their
// state before the protection, a block as a whole; clean, read-only and
// untouched leaves are not reported.
TYPED_TEST_P(PgtableTest, WrprotectReportsDirtyLeaves)
{
	using F = TypeParam;
	using H = Hw<F>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	const u64 ia = 4 * S1;
	ASSERT_EQ(rc(e.map(ia, S1, pa)), 0);			// a block
	ASSERT_EQ(rc(e.map(ia + S1, 4 * P, pa + S1)), 0);	// base pages
	ASSERT_EQ(rc(e.map(ia + S1 + 4 * P, P, pa + S1 + 4 * P, kRO)), 0);
	e.hw_set(ia + S1 + 2 * P, H::dirty_bit); // the MMU writes one page
	const u64 raw_block = H::load(e.slot(ia, 1));
	u64 raw_pages[4];
	for (u64 i = 0; i < 4; i++)
		raw_pages[i] = H::load(e.slot(ia + S1 + i * P, 0));
	RecordingSink sink;
	ASSERT_EQ(rc(e.wrprotect(ia, S1 + 5 * P, &sink)), 0);
	std::vector<Removed> want;
	auto add = [&](u64 a, unsigned level, u64 oa, u64 raw) {
		Removed r = removed_as<F>(a, level, oa, raw, kRW);
		if (r.dirty)
			want.push_back(r);
	};
	add(ia, 1, pa, raw_block);
	for (u64 i = 0; i < 4; i++)
		add(ia + S1 + i * P, 0, pa + S1 + i * P, raw_pages[i]);
	EXPECT_TRUE(same_reports(sink.v, want));
	// The written page is reported on every format.
	bool page_reported = false;
	for (auto &r : sink.v)
		page_reported |= r.ia == ia + S1 + 2 * P;
	EXPECT_TRUE(page_reported || (!H::can_set_hw_dirty() && H::kind != Kind::arm));
	// Protected now: a second pass reports nothing.
	RecordingSink again;
	ASSERT_EQ(rc(e.wrprotect(ia, S1 + 5 * P, &again)), 0);
	EXPECT_TRUE(again.v.empty());
}

// Every leaf unmap() removes is reported once with its last value: a block
// unmapped in part as the pieces a split makes of it, each with the
// block's A/D; whole leaves and the leaves of whole subtrees with their
// own, including A/D the MMU sets after the subtree is unlinked and before
// the invalidation.
TYPED_TEST_P(PgtableTest, UnmapReportsRemovedLeaves)
{
	using F = TypeParam;
	using H = Hw<F>;
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), S1 = e.size(1), T = e.top(), R = e.size(g.levels - 1), pa = u64(1) << 40;
	const u64 touched = H::young_bit | H::dirty_bit; // what a write sets

	// A largest block, unmapped from a page past its middle on.
	ASSERT_EQ(rc(e.map(T, T, pa + T)), 0);
	ASSERT_EQ(e.leaf(T).level, g.max_leaf);
	// A level-1 entry's worth of base pages and four read-only ones (clean
	// on every format): the first leaf table goes whole, two of the four
	// pages one by one.
	const u64 pg = 2 * T;
	ASSERT_EQ(rc(e.map(pg, S1, pa + pg + P)), 0);
	ASSERT_EQ(rc(e.map(pg + S1, 4 * P, pa + pg + S1 + P, kRO)), 0);
	auto attrs_at = [&](u64 ia) { return ia >= pg + S1 && ia < pg + S1 + 4 * P ? kRO : kRW; };
	// A whole root entry: base pages, a level-1 block, and a largest
	// block where there is a level between.
	const u64 deep = 8 * R;
	ASSERT_EQ(rc(e.map(deep, 2 * S1, pa + P)), 0);
	ASSERT_EQ(rc(e.map(deep + 2 * S1, S1, pa + 2 * S1)), 0);
	ASSERT_EQ(e.leaf(deep + 2 * S1).level, 1u);
	if (T > S1 && R > T) {
		ASSERT_EQ(rc(e.map(deep + T, T, pa + T)), 0);
		ASSERT_EQ(e.leaf(deep + T).level, g.max_leaf);
	}
	// All old; then the MMU touches some.
	ASSERT_TRUE(e.young(T, pg + S1 + 4 * P - T).ok());
	ASSERT_TRUE(e.young(deep, R).ok());
	e.hw_set(T, touched);
	e.hw_set(pg + 3 * P, H::young_bit);
	e.hw_set(pg + 5 * P, H::dirty_bit); // nothing on Arm
	e.hw_set(pg + S1, H::young_bit);
	e.hw_set(pg + S1 + P, touched);
	e.hw_set(deep + 2 * S1, touched);
	e.hw_set(deep + S1 + 9 * P, H::young_bit);

	// After a subtree is unlinked, before the invalidation: the MMU
	// writes through a translation it still caches.
	HookScope hooks{e.ops};
	struct Late {
		u64 *parent, *leaf, ia;
		bool fired;
	};
	std::vector<Late> late = {{e.slot(pg, 1), e.slot(pg + 7 * P, 0), pg + 7 * P, false},
				  {e.slot(deep, g.levels - 1), e.slot(deep + 11 * P, 0), deep + 11 * P, false}};
	e.ops.on_sync = [&](void *va, size_t) {
		for (Late &l : late)
			if (va == l.parent && !l.fired) {
				l.fired = true;
				H::store(l.leaf, H::load(l.leaf) | touched);
			}
	};

	std::vector<Removed> want;
	const u64 u = T + T / 2 + P, end = pg + S1 + 2 * P;
	const u64 block = e.raw(T, g.max_leaf);
	for (const RefLeaf &l : greedy_leaves(g, u, 2 * T - u, pa + u))
		want.push_back(removed_as<F>(l.ia, l.level, pa + l.ia, block, kRW));
	for (auto [lo, hi] : {std::make_pair(pg, end), std::make_pair(deep, deep + R)})
		for (auto [ia, level, raw] : e.leaves(lo, hi)) {
			for (const Late &l : late)
				if (ia == l.ia)
					raw |= touched;
			want.push_back(removed_as<F>(ia, level, H::leaf_oa(raw), raw, attrs_at(ia)));
		}
	// The cases above are there.
	const auto count_if = [&](auto pred) { return std::count_if(want.begin(), want.end(), pred); };
	EXPECT_GT(count_if([](const Removed &r) { return r.young && !r.dirty; }), 0) << "young, clean";
	EXPECT_GT(count_if([](const Removed &r) { return r.young && r.dirty; }), 0) << "young, dirty";
	EXPECT_GT(count_if([](const Removed &r) { return !r.young; }), 0) << "old";
	EXPECT_GT(count_if([&](const Removed &r) { return r.size == S1; }), 0) << "blocks";

	RecordingSink sink;
	ASSERT_EQ(rc(e.unmap(u, end - u, &sink)), 0);
	ASSERT_EQ(rc(e.unmap(deep, R, &sink)), 0);
	EXPECT_TRUE(late[0].fired && late[1].fired);
	EXPECT_TRUE(same_reports(sink.v, want));

	// Gone; what was outside the ranges is still there.
	EXPECT_FALSE(e.leaf(u).mapped);
	EXPECT_FALSE(e.leaf(end - P).mapped);
	EXPECT_FALSE(e.leaf(deep + S1).mapped);
	EXPECT_EQ(e.leaf(u - P).oa, pa + u - P);
	EXPECT_EQ(e.leaf(end).oa, pa + end + P);
	EXPECT_TRUE(e.check_tree());
}

// When unmap() runs out of tables for a split, what it removed before is
// reported; the caller's own cache serves the split (MmOps' is not asked).
TYPED_TEST_P(PgtableTest, UnmapSinkAndCallersCacheWhenSplitting)
{
	using F = TypeParam;
	using PT = PageTable<F>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = u64(1) << 40;
	const bool d0 = Hw<F>::dirty_at_map(kRW.prot);
	ASSERT_EQ(rc(e.map(S1, 2 * S1, pa)), 0);
	ASSERT_EQ(e.leaf(S1).level, 1u);
	e.cache.drain();
	RecordingSink sink;
	auto unmap = [&](u64 a, u64 n, TableCache *c) {
		e.ops.begin();
		kvmmu::WriteGuard g(e.lock);
		return e.pt->unmap(a, n, &sink, c);
	};
	EXPECT_EQ(rc(unmap(S1, S1 + P, nullptr)), -ENOMEM);
	EXPECT_TRUE(same_reports(sink.v, {{S1, S1, pa, kRW, true, d0}}));

	TableCache mine(PT::table_alloc_bytes());
	ASSERT_TRUE(mine.topup(2, gfp::kernel).ok());
	const u64 allocs = e.ops.nalloc.load();
	sink.v.clear();
	ASSERT_EQ(rc(unmap(2 * S1 + P, P, &mine)), 0);
	EXPECT_EQ(mine.count(), 1u);
	EXPECT_EQ(e.ops.nalloc.load(), allocs);
	EXPECT_TRUE(same_reports(sink.v, {{2 * S1 + P, P, pa + S1 + P, kRW, true, d0}}));
	EXPECT_EQ(e.leaf(2 * S1).oa, pa + S1);
	EXPECT_EQ(e.leaf(2 * S1 + 2 * P).oa, pa + S1 + 2 * P);
	EXPECT_FALSE(e.leaf(2 * S1 + P).mapped);
	EXPECT_TRUE(e.check_tree());
}

// map() and split() with the caller's TableCache take every table from it
// and none from MmOps; a dry or too small cache is -ENOMEM.
TYPED_TEST_P(PgtableTest, CallersTableCache)
{
	using F = TypeParam;
	using PT = PageTable<F>;
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), S1 = e.size(1), T = e.top(), pa = u64(1) << 40;
	e.cache.drain();
	const u64 allocs = e.ops.nalloc.load();
	TableCache mine(PT::table_alloc_bytes());
	const u64 ia = this->root_boundary() - 2 * P, size = S1 + 4 * P;
	ASSERT_TRUE(mine.topup(PT::tables_for(size), gfp::kernel).ok());
	const unsigned n0 = mine.count();
	{
		kvmmu::ReadGuard gd(e.lock);
		u64 done = 0;
		ASSERT_EQ(rc(e.pt->map(ia, size, pa + P, kRW, &done, &mine)), 0);
		EXPECT_EQ(done, size);
	}
	EXPECT_EQ(n0 - mine.count(), e.stats().tables - 1);
	EXPECT_EQ(e.ops.nalloc.load(), allocs);
	for (u64 a = ia; a < ia + size; a += P)
		ASSERT_EQ(e.leaf(a).oa, pa + P + (a - ia)) << hex(a);

	// Dry: nothing done, though MmOps' cache is full.
	e.topup();
	mine.drain();
	const u64 other = 4 * T;
	for (TableCache *c : {&mine, static_cast<TableCache *>(nullptr)}) {
		TableCache small(PT::table_alloc_bytes() / 2);
		ASSERT_TRUE(small.topup(4, gfp::kernel).ok());
		kvmmu::ReadGuard gd(e.lock);
		u64 done = ~u64(0);
		EXPECT_EQ(rc(e.pt->map(other, P, pa, kRW, &done, c ? c : &small)), -ENOMEM);
		EXPECT_EQ(done, 0u);
		EXPECT_EQ(small.count(), 4u); // chunks smaller than a table: unused
	}
	EXPECT_FALSE(e.leaf(other).mapped);
	EXPECT_EQ(e.ops.nalloc.load(), allocs);

	// split() likewise.
	ASSERT_EQ(rc(e.map(other, T, pa)), 0);
	e.cache.drain();
	ASSERT_TRUE(mine.topup(1, gfp::kernel).ok());
	{
		kvmmu::WriteGuard gd(e.lock);
		u64 done = 0;
		ASSERT_EQ(rc(e.pt->split(other, T, g.max_leaf - 1, &done, &mine)), 0);
		EXPECT_EQ(done, T);
	}
	EXPECT_EQ(mine.count(), 0u);
	EXPECT_EQ(e.leaf(other + T - P).level, g.max_leaf - 1);
	EXPECT_EQ(e.leaf(other + T - P).oa, pa + T - P);
	EXPECT_TRUE(e.check_tree());
}

// A map() that builds its tables privately and then finds that another
// one linked a table there first gives back everything it built (to its
// own cache) and completes through the winner's tables.
TYPED_TEST_P(PgtableTest, MapLosingTheRaceGivesBackItsTables)
{
	using PT = PageTable<TypeParam>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), pa = (u64(1) << 40) + P;
	const u64 ia = this->root_boundary() + S1 - P, size = S1 + 2 * P;
	TableCache a(PT::table_alloc_bytes()), b(PT::table_alloc_bytes());
	ASSERT_TRUE(a.topup(PT::tables_for(size), gfp::kernel).ok());
	ASSERT_TRUE(b.topup(PT::tables_for(size), gfp::kernel).ok());
	const unsigned na = a.count(), nb = b.count();
	std::atomic<bool> armed{true};
	int rc_b = 1;
	u64 done_b = 0;
	HookScope hooks{e.ops};
	// The first table this thread completes (its count taken, nothing
	// linked yet): another vCPU maps the same range meanwhile.
	e.ops.on_get = [&](void *, unsigned) {
		if (!armed.exchange(false))
			return;
		std::thread([&] {
			kvmmu::ReadGuard g(e.lock);
			rc_b = rc(e.pt->map(ia, size, pa, kRW, &done_b, &b));
		}).join();
	};
	u64 done = 0;
	{
		kvmmu::ReadGuard g(e.lock);
		ASSERT_EQ(rc(e.pt->map(ia, size, pa, kRW, &done, &a)), 0);
	}
	EXPECT_FALSE(armed.load());
	EXPECT_EQ(rc_b, 0);
	EXPECT_EQ(done_b, size);
	EXPECT_EQ(done, size);
	EXPECT_EQ(e.stats().lost_races, 1u);
	EXPECT_EQ(a.count(), na) << "the loser's tables went back to its cache";
	EXPECT_EQ(nb - b.count(), e.stats().tables - 1);
	EXPECT_EQ(e.ops.nunused.load(), 0u);
	for (u64 x = ia; x < ia + size; x += P)
		ASSERT_EQ(e.leaf(x).oa, pa + (x - ia)) << hex(x);
	EXPECT_TRUE(e.check_tree());
}

// New tables are filled before they are linked: by the time the entry
// linking them is synced for a non-snooping walker, every entry below it
// has been.
TYPED_TEST_P(PgtableTest, MapSyncsNewTablesBeforeLinkingThem)
{
	using H = Hw<TypeParam>;
	auto &e = *this->env;
	const Geo &g = this->G;
	const u64 P = e.page(), S1 = e.size(1), pa = (u64(1) << 40) + P;
	const u64 ia = this->root_boundary() + S1 - P, size = 2 * S1 + 2 * P;
	u64 *top = e.slot(ia, g.levels - 1);
	std::string err;
	unsigned checked = 0;
	HookScope hooks{e.ops};
	std::function<void(u64 *, unsigned)> all_synced = [&](u64 *t, unsigned level) {
		for (u64 i = 0; i < B(g.bits[level]); i++) {
			u64 v = H::load(&t[i]);
			if (!v)
				continue;
			checked++;
			if (!e.ops.synced(&t[i], 8) && err.empty())
				err = "level " + std::to_string(level) + " entry " + std::to_string(i) + " not synced";
			if (H::is_table(v, level))
				all_synced(static_cast<u64 *>(kvmmu_plat_phys_to_virt(H::next(v))), level - 1);
		}
	};
	e.ops.record_syncs = true;
	e.ops.on_sync = [&](void *va, size_t) {
		u64 v = H::load(top);
		if (va == top && H::is_table(v, g.levels - 1))
			all_synced(static_cast<u64 *>(kvmmu_plat_phys_to_virt(H::next(v))), g.levels - 2);
	};
	ASSERT_EQ(rc(e.map(ia, size, pa)), 0);
	EXPECT_EQ(err, "");
	EXPECT_EQ(checked, size / P + e.stats().tables - 2); // every leaf, every table below the top one
	EXPECT_TRUE(e.ops.synced(top, 8));
}

// collapse() makes the block young/dirty if a child was when the break
// took effect: the MMU may set a child's A/D until the invalidation that
// follows the break completes.
TYPED_TEST_P(PgtableTest, CollapseKeepsAccessedAndDirtySetUntilTheBreak)
{
	using H = Hw<TypeParam>;
	auto &e = *this->env;
	const u64 P = e.page(), S1 = e.size(1), ia = 2 * S1, pa = u64(1) << 40;
	ASSERT_EQ(rc(e.map(ia, S1, pa)), 0);
	ASSERT_EQ(rc(e.split(ia, S1, 0)), 0);
	ASSERT_TRUE(e.young(ia, S1).ok());
	ASSERT_FALSE(e.leaf(ia + 5 * P).young);
	ASSERT_FALSE(e.leaf(ia + 5 * P).dirty && H::can_set_hw_dirty() && Hw<TypeParam>::kind == Kind::ept);
	u64 *child = e.slot(ia + 5 * P, 0);
	bool fired = false;
	HookScope hooks{e.ops};
	e.ops.on_flush = [&](u64, u64) {
		if (fired)
			return;
		fired = true;
		H::store(child, H::load(child) | H::young_bit | H::dirty_bit);
	};
	ASSERT_EQ(rc(e.collapse(ia, 1)), 0);
	EXPECT_TRUE(fired);
	Leaf l = e.leaf(ia);
	EXPECT_EQ(l.level, 1u);
	EXPECT_TRUE(l.young) << "collapse lost an accessed bit set before its invalidation";
	EXPECT_TRUE(l.dirty || !H::can_set_hw_dirty()) << "collapse lost a dirty bit set before its invalidation";
	EXPECT_EQ(e.raw(ia, 1) & (H::young_bit | H::dirty_bit), H::young_bit | H::dirty_bit);
	EXPECT_TRUE(e.check_tree());
}

// ---------------------------------------------------------------------------
// Differential fuzzer: random operations on the PageTable and on a flat
// per-base-page model, compared after every operation.
// ---------------------------------------------------------------------------

struct ModelPage {
	bool mapped = false;
	u64 oa = 0;
	Attrs a;
};

const Attrs kFuzzAttrs[] = {
	{kRead | kWrite, MemType::normal_wb}, {kRead, MemType::normal_wb},
	{kRWX, MemType::normal_wb},	      {kRead | kWrite, MemType::device},
	{kRead | kWrite, MemType::normal_nc}, {kRead | kExec, MemType::normal_wb},
};

// What the fuzzer exercised, summed over seeds (reported as test properties).
struct FuzzStats {
	u64 maps = 0, unmaps = 0, wrprotects = 0, splits = 0, collapses = 0, collapse_ok = 0, ages = 0;
	u64 enomem_retries = 0, block_leaves = 0, bbm = 0;
};

template <class F>
class Fuzzer {
public:
	using E = Env<F>;
	static constexpr const Geo &G = Spec<F>::geo;
	static constexpr u64 kPages = 16384; // 64M of 4K pages, 256M of 16K, 1G of 64K

	Fuzzer(E &e, u64 seed, bool verbose, FuzzStats &st)
		: e_(e), rng_(seed), seed_(seed), verbose_(verbose), st_(st)
	{
		P_ = E::page();
		S1_ = E::size(1);
		// Straddle a root-entry boundary.
		base_ = S(G, G.levels - 1) - kPages / 2 * P_;
		model_.assign(kPages, ModelPage{});
	}

	bool run(unsigned nops)
	{
		const u64 bbm0 = e_.stats().bbm;
		for (op_ = 0; op_ < nops; op_++) {
			if (!step())
				return fail("");
			if (op_ % 128 == 127 && !tree_ok())
				return false;
		}
		// Every page, then tear everything down.
		for (u64 i = 0; i < kPages; i++)
			if (!compare(base_ + i * P_))
				return fail("final comparison");
		if (!tree_ok())
			return false;
		st_.bbm += e_.stats().bbm - bbm0;
		if (!e_.unmap(base_, kPages * P_).ok())
			return fail("final unmap");
		if (e_.stats().tables != 1)
			return fail("tables left after unmapping everything: " + std::to_string(e_.stats().tables));
		if (e_.ops.freed_before_flush.load())
			return fail("a table was freed before an invalidation");
		return true;
	}

private:
	u64 rnd(u64 n) { return n ? rng_() % n : 0; }
	u64 page_of(u64 ia) const { return (ia - base_) / P_; }
	bool in(u64 ia) const { return ia >= base_ && ia < base_ + kPages * P_; }

	// A random range in the window: a few pages, many pages, or blocks.
	std::pair<u64, u64> range()
	{
		u64 first, n;
		switch (rnd(4)) {
		case 0:
			first = rnd(kPages), n = 1 + rnd(8);
			break;
		case 1:
			first = rnd(kPages), n = 1 + rnd(std::min<u64>(S1_ / P_, 600) + 64);
			break;
		case 2: { // whole blocks, maybe with a page more or less at the ends
			u64 per = S1_ / P_, nb = kPages / per;
			first = rnd(nb) * per, n = (1 + rnd(2)) * per;
			if (rnd(4) == 0 && first)
				first--, n++;
			if (rnd(4) == 0)
				n++;
			break;
		}
		default:
			first = rnd(kPages), n = 1 + rnd(64);
			break;
		}
		n = std::min(n, kPages - first);
		return {base_ + first * P_, n * P_};
	}
	// Output addresses: a few block-compatible offsets (so that separate
	// maps make contiguous, collapsible runs), one misaligned offset, or
	// anything.
	u64 pa_for(u64 ia)
	{
		switch (rnd(6)) {
		case 0:
		case 1:
			return ia + (u64(1) << 40);
		case 2:
			return ia + (u64(3) << 40);
		case 3:
			return ia + (u64(1) << 40) + P_;
		case 4:
			return (u64(1) << 41) + rnd(u64(1) << 28) * P_;
		default:
			return ia + (u64(1) << 40);
		}
	}

	bool step()
	{
		auto [ia, size] = range();
		std::ostringstream what;
		bool ok = true;
		unsigned kind = unsigned(rnd(100));
		// One map or split in eight starts with a nearly empty cache.
		e_.starve = -1;
		if ((kind < 40 || (kind >= 68 && kind < 80)) && rnd(8) == 0) {
			e_.starve = int(rnd(4));
			what << "[" << e_.starve << " tables] ";
		}
		if (kind < 40) {
			u64 pa = pa_for(ia);
			Attrs a = kFuzzAttrs[rnd(sizeof(kFuzzAttrs) / sizeof(kFuzzAttrs[0]))];
			if (rnd(8) == 0)
				a = kFuzzAttrs[0];
			what << "map " << hex(ia) << "+" << hex(size) << " -> " << hex(pa) << " " << attrs_str(a);
			log(what.str());
			ok = do_map(ia, size, pa, a);
			st_.maps++;
		} else if (kind < 58) {
			what << "unmap " << hex(ia) << "+" << hex(size);
			log(what.str());
			ok = do_unmap(ia, size);
			st_.unmaps++;
		} else if (kind < 68) {
			what << "wrprotect " << hex(ia) << "+" << hex(size);
			log(what.str());
			ok = do_wrprotect(ia, size);
			st_.wrprotects++;
		} else if (kind < 80) {
			unsigned level = unsigned(rnd(G.max_leaf));
			what << "split " << hex(ia) << "+" << hex(size) << " to " << level;
			log(what.str());
			ok = do_split(ia, size, level);
			st_.splits++;
		} else if (kind < 94) {
			unsigned level = 1 + unsigned(rnd(G.max_leaf));
			if (rnd(4) == 0)
				level = G.max_leaf + 1; // rejected
			what << "collapse " << hex(ia) << " at " << level;
			log(what.str());
			ok = do_collapse(ia, level);
			st_.collapses++;
		} else {
			what << "young " << hex(ia) << "+" << hex(size);
			log(what.str());
			ok = e_.young(ia, size).ok();
			st_.ages++;
			if (!ok)
				err_ = "test_clear_young failed";
		}
		if (!ok)
			return false;
		// Around the operation and a few random pages.
		for (u64 a : {ia - P_, ia, ia + size - P_, ia + size, ia + (size / 2 & ~(P_ - 1))})
			if (in(a) && !compare(a))
				return false;
		for (int i = 0; i < 8; i++)
			if (!compare(base_ + rnd(kPages) * P_))
				return false;
		if (e_.ops.freed_before_flush.load()) {
			err_ = "a table was freed before an invalidation";
			return false;
		}
		return true;
	}

	// Pages of [ia, ia + size) whose translation differed and so must be
	// covered by the operation's invalidations.
	bool check_flushed(const std::vector<u64> &changed)
	{
		for (u64 a : changed)
			if (!e_.ops.covered(a, a + P_)) {
				err_ = "changed translation of " + hex(a) + " not invalidated";
				return false;
			}
		return true;
	}

	bool do_map(u64 ia, u64 size, u64 pa, Attrs a)
	{
		bool starved = e_.starve >= 0;
		std::vector<u64> changed;
		for (u64 off = 0; off < size;) {
			u64 done = 0;
			auto r = e_.map(ia + off, size - off, pa + off, a, &done);
			for (u64 x = off; x < off + done; x += P_) {
				ModelPage &m = model_[page_of(ia + x)];
				if (m.mapped && (m.oa != pa + x || m.a != a))
					changed.push_back(ia + x);
				m = {true, pa + x, a};
			}
			if (!check_flushed(changed))
				return false;
			changed.clear();
			if (r.ok())
				return true;
			if (rc(r) != -ENOMEM || (!done && !starved)) {
				err_ = "map failed: " + std::to_string(rc(r)) + " after " + hex(off + done);
				return false;
			}
			starved = false;
			st_.enomem_retries++;
			off += done; // top up and go on, as a caller would
		}
		return true;
	}
	bool do_unmap(u64 ia, u64 size)
	{
		auto r = e_.unmap(ia, size);
		if (!r.ok()) {
			err_ = "unmap failed: " + std::to_string(rc(r));
			return false;
		}
		std::vector<u64> changed;
		for (u64 x = 0; x < size; x += P_) {
			ModelPage &m = model_[page_of(ia + x)];
			if (m.mapped)
				changed.push_back(ia + x);
			m.mapped = false;
		}
		return check_flushed(changed);
	}
	bool do_wrprotect(u64 ia, u64 size)
	{
		// A block partly in the range is protected whole.
		Leaf first = e_.leaf(ia), last = e_.leaf(ia + size - P_);
		u64 lo = first.mapped ? first.ia : ia;
		u64 hi = last.mapped ? last.ia + last.size : ia + size;
		auto r = e_.wrprotect(ia, size);
		if (!r.ok()) {
			err_ = "wrprotect failed";
			return false;
		}
		std::vector<u64> changed;
		for (u64 x = lo; x < hi; x += P_) {
			ModelPage &m = model_[page_of(x)];
			if (m.mapped && (m.a.prot & kWrite)) {
				m.a.prot &= ~kWrite;
				changed.push_back(x);
			}
		}
		return check_flushed(changed);
	}
	bool do_split(u64 ia, u64 size, unsigned level)
	{
		bool starved = e_.starve >= 0;
		for (u64 off = 0; off < size;) {
			u64 done = 0;
			auto r = e_.split(ia + off, size - off, level, &done);
			if (r.ok())
				break;
			if (rc(r) != -ENOMEM || (!done && !starved)) {
				err_ = "split failed: " + std::to_string(rc(r));
				return false;
			}
			st_.enomem_retries++;
			starved = false;
			off += done;
		}
		for (u64 a : {ia, ia + size - P_, ia + (size / 2 & ~(P_ - 1))}) {
			Leaf l = e_.leaf(a);
			if (l.mapped && l.level > level) {
				err_ = "split left a level-" + std::to_string(l.level) + " leaf at " + hex(a);
				return false;
			}
		}
		return true;
	}
	bool do_collapse(u64 ia, unsigned level)
	{
		// Predict from the model: every page of the block mapped, one
		// aligned contiguous output range, the same attributes, and
		// (structure) the children are leaves one level down.
		bool expect = level >= 1 && level <= G.max_leaf;
		const u64 bsize = S(G, level), start = ia & ~(bsize - 1);
		if (expect && (start < base_ || start + bsize > base_ + kPages * P_))
			expect = false;
		if (expect) {
			const ModelPage &m0 = model_[page_of(start)];
			expect = m0.mapped && !(m0.oa & (bsize - 1));
			for (u64 x = 0; expect && x < bsize; x += P_) {
				const ModelPage &m = model_[page_of(start + x)];
				expect = m.mapped && m.oa == m0.oa + x && m.a == m0.a;
			}
			for (u64 x = 0; expect && x < bsize; x += S(G, level - 1))
				expect = e_.leaf(start + x).level == level - 1;
		}
		auto r = e_.collapse(ia, level);
		if (r.ok() != expect) {
			err_ = std::string("collapse ") + (r.ok() ? "succeeded" : "failed") + ", model says " +
			       (expect ? "it can" : "it cannot");
			return false;
		}
		st_.collapse_ok += r.ok();
		if (r.ok() && e_.leaf(start).level != level) {
			err_ = "collapse left no block";
			return false;
		}
		if (!r.ok() && rc(r) != -EINVAL) {
			err_ = "collapse: " + std::to_string(rc(r));
			return false;
		}
		return true;
	}

	bool compare(u64 a)
	{
		const ModelPage &m = model_[page_of(a)];
		Leaf l = e_.leaf(a);
		std::ostringstream s;
		if (l.mapped != m.mapped) {
			s << hex(a) << ": mapped " << l.mapped << ", model " << m.mapped;
		} else if (m.mapped && (l.oa != m.oa || l.attrs != m.a)) {
			s << hex(a) << ": " << hex(l.oa) << " " << attrs_str(l.attrs) << ", model " << hex(m.oa)
			  << " " << attrs_str(m.a);
		} else if (m.mapped) {
			st_.block_leaves += l.level > 0;
			// The whole leaf agrees with the model at both ends.
			if (l.size != S(G, l.level) || l.ia != (a & ~(l.size - 1)))
				s << hex(a) << ": leaf range " << hex(l.ia) << "+" << hex(l.size);
			for (u64 x : {l.ia, l.ia + l.size - P_}) {
				if (!in(x)) {
					s << hex(a) << ": leaf " << hex(l.ia) << " reaches outside the window";
					break;
				}
				const ModelPage &mx = model_[page_of(x)];
				if (!mx.mapped || mx.oa != m.oa + (x - a) || mx.a != m.a)
					s << hex(a) << ": level-" << l.level << " leaf disagrees with the model at "
					  << hex(x);
			}
		}
		err_ = s.str();
		return err_.empty();
	}

	bool tree_ok()
	{
		auto r = e_.check_tree();
		if (!r)
			return fail(r.message());
		return true;
	}

	void log(const std::string &s)
	{
		if (verbose_)
			printf("  [%u] %s\n", op_, s.c_str());
		last_.push_back(s);
		if (last_.size() > 12)
			last_.erase(last_.begin());
	}
	bool fail(const std::string &why)
	{
		std::ostringstream s;
		s << G.name << " seed " << seed_ << " op " << op_ << ": " << (why.empty() ? err_ : why)
		  << "\n  last operations:";
		for (auto &x : last_)
			s << "\n    " << x;
		s << "\n  replay: PGTABLE_FUZZ_SEED=" << seed_ << " --gtest_filter='*" << G.name << ".Fuzz*'";
		ADD_FAILURE() << s.str();
		return false;
	}

	E &e_;
	std::mt19937_64 rng_;
	u64 seed_;
	bool verbose_;
	FuzzStats &st_;
	u64 P_, S1_, base_;
	unsigned op_ = 0;
	std::vector<ModelPage> model_;
	std::vector<std::string> last_;
	std::string err_;
};

// The fuzzer is single-threaded: under the sanitizers (several times
// slower) fewer seeds do; TSan in particular adds little here.
#if defined(__SANITIZE_THREAD__)
constexpr unsigned kFuzzSeeds = 2;
#elif defined(__SANITIZE_ADDRESS__)
constexpr unsigned kFuzzSeeds = 5;
#else
constexpr unsigned kFuzzSeeds = 20;
#endif

unsigned env_uint(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	return v && *v ? unsigned(strtoul(v, nullptr, 0)) : dflt;
}

TYPED_TEST_P(PgtableTest, FuzzAgainstModel)
{
	auto &e = *this->env;
	FuzzStats st;
	const char *one = getenv("PGTABLE_FUZZ_SEED");
	if (one && *one) {
		Fuzzer<TypeParam> f(e, strtoull(one, nullptr, 0), true, st);
		f.run(env_uint("PGTABLE_FUZZ_OPS", 2000));
		return;
	}
	const unsigned seeds = env_uint("PGTABLE_FUZZ_SEEDS", kFuzzSeeds), ops = env_uint("PGTABLE_FUZZ_OPS", 2000);
	for (unsigned s = 1; s <= seeds; s++) {
		Fuzzer<TypeParam> f(e, s, false, st);
		if (!f.run(ops))
			break;
	}
	EXPECT_EQ(e.stats().tables, 1u);
	// It reached the interesting paths.
	EXPECT_GT(st.collapse_ok, 0u);
	EXPECT_GT(st.block_leaves, 0u);
	EXPECT_GT(st.bbm, 0u);
	const std::pair<const char *, u64> props[] = {
		{"maps", st.maps},	       {"unmaps", st.unmaps},
		{"wrprotects", st.wrprotects}, {"splits", st.splits},
		{"collapses", st.collapses},   {"collapse_ok", st.collapse_ok},
		{"ages", st.ages},	       {"enomem_retries", st.enomem_retries},
		{"block_leaves_seen", st.block_leaves}, {"bbm", st.bbm},
	};
	for (auto &p : props)
		::testing::Test::RecordProperty(p.first, std::to_string(p.second));
}

// ---------------------------------------------------------------------------
// Concurrency (TSan): map() from several threads, overlapping and not, with
// test_clear_young() running all along, under the shared lock.
// ---------------------------------------------------------------------------
TYPED_TEST_P(PgtableTest, ConcurrentMapAndAge)
{
	using E = Env<TypeParam>;
	auto &e = *this->env;
	const u64 P = E::page(), S1 = E::size(1);
	// A few blocks' worth (the 64K granule's 512M blocks: two, in steps
	// of several pages).
	const u64 per = S1 / P, nblk = per > 2048 ? 2 : per < 64 ? 64 : 4;
	const u64 step = per > 2048 ? 64 : 4; // pages per map() call
	const u64 base = 2 * E::top(), len = nblk * S1, off = u64(1) << 40;
	const u64 disjoint = base + len + S1, dlen = std::min<u64>(S1, 256 * P);
	auto pa_of = [&](u64 ia) { return ia + off; };
	std::atomic<u64> eagain{0};
#if defined(__SANITIZE_THREAD__)
	const int rounds = 8;
#else
	const int rounds = 24;
#endif

	// Every table comes from the caller's cache: nothing from MmOps'.
	const u64 shared_allocs = e.ops.nalloc.load();
	auto map_range = [&](TableCache &cache, u64 ia, u64 size) {
		u64 at = 0;
		while (at < size) {
			if (cache.count() < 8 && !cache.topup(TableCache::kCapacity, gfp::kernel).ok()) {
				ADD_FAILURE() << "topup";
				return;
			}
			u64 done = 0;
			Result<void> r = Result<void>();
			{
				kvmmu::ReadGuard g(e.lock);
				r = e.pt->map(ia + at, size - at, pa_of(ia + at), kRW, &done, &cache);
			}
			at += done;
			if (r.ok())
				return;
			if (rc(r) == -EAGAIN)
				eagain.fetch_add(1), std::this_thread::yield();
			else if (rc(r) != -ENOMEM) {
				ADD_FAILURE() << "map: " << rc(r);
				return;
			}
		}
	};
	// Runs fn on a thread with its own table cache, as a vCPU has.
	std::atomic<int> ready{0};
	const int nthreads = 5;
	auto worker = [&](std::function<void(TableCache &)> fn) {
		return std::thread([&, fn] {
			TableCache cache(PageTable<TypeParam>::table_alloc_bytes());
			if (!cache.topup(TableCache::kCapacity, gfp::kernel).ok())
				ADD_FAILURE() << "topup";
			ready.fetch_add(1);
			while (ready.load() < nthreads)
				std::this_thread::yield();
			fn(cache);
		});
	};

	for (int round = 0; round < rounds; round++) {
		std::atomic<bool> mapping{true};
		ready = 0;
		std::vector<std::thread> threads;
		// Two threads in lockstep order over the same pages (racing to
		// create the same tables and leaves), offset by a page.
		for (u64 shift : {u64(0), u64(1)})
			threads.push_back(worker([&, shift](TableCache &c) {
				map_range(c, base, shift * P);
				for (u64 a = base + shift * P; a < base + len; a += step * P)
					map_range(c, a, std::min(step * P, base + len - a));
			}));
		// Whole blocks, last first: meets the page mappers, splits or
		// descends into what they built.
		threads.push_back(worker([&](TableCache &c) {
			for (u64 b = nblk; b-- > 0;)
				map_range(c, base + b * S1, S1);
		}));
		// Random stretches, and a range no one else maps.
		threads.push_back(worker([&, round](TableCache &c) {
			std::mt19937_64 rng(round);
			for (int i = 0; i < 32; i++) {
				u64 a = base + (rng() % (len / P)) * P;
				u64 n = std::min<u64>(1 + rng() % (2 * step + 7), (base + len - a) / P);
				map_range(c, a, n * P);
			}
			for (u64 a = disjoint; a < disjoint + dlen; a += step * P)
				map_range(c, a, std::min(step * P, disjoint + dlen - a));
		}));
		// Aging all along.
		threads.push_back(worker([&](TableCache &) {
			while (mapping.load()) {
				kvmmu::ReadGuard g(e.lock);
				auto r = e.pt->test_clear_young(base, disjoint + dlen - base);
				if (!r.ok())
					ADD_FAILURE() << "test_clear_young: " << rc(r);
			}
		}));
		for (int i = 0; i < nthreads - 1; i++)
			threads[i].join();
		mapping = false;
		threads[nthreads - 1].join();

		for (u64 a = base; a < base + len; a += P) {
			Leaf l = e.leaf(a);
			ASSERT_TRUE(l.mapped && l.oa == pa_of(a) && l.attrs == kRW) << "round " << round << " " << hex(a);
		}
		for (u64 a = disjoint; a < disjoint + dlen; a += P)
			ASSERT_TRUE(e.leaf(a).mapped && e.leaf(a).oa == pa_of(a)) << hex(a);
		EXPECT_FALSE(e.leaf(base + len).mapped);
		EXPECT_FALSE(e.leaf(disjoint + dlen).mapped);
		EXPECT_TRUE(e.check_tree());
		EXPECT_EQ(e.ops.nalloc.load(), shared_allocs);
		EXPECT_EQ(e.ops.nunused.load(), 0u);
		ASSERT_EQ(rc(e.unmap(base, disjoint + dlen - base)), 0);
		EXPECT_EQ(e.stats().tables, 1u);
	}
	// How much the threads really raced: -EAGAIN from a locked entry,
	// tables given back after losing the race to publish them.
	::testing::Test::RecordProperty("eagain", std::to_string(eagain.load()));
	::testing::Test::RecordProperty("lost_table_races", std::to_string(e.stats().lost_races));
	::testing::Test::RecordProperty("bbm", std::to_string(e.stats().bbm));
}

REGISTER_TYPED_TEST_SUITE_P(PgtableTest,
	GeometryMatchesManual,
	CreateAndDestroy,
	CreateFailsCleanly,
	MapPicksLargestLeaf,
	MapMisalignedOutputUsesBasePages,
	UnmapFreesEmptiedTables,
	UnmapOfPartOfBlockSplitsIt,
	UnmapOfPartOfBlockWithoutTables,
	WriteProtect,
	TestClearYoung,
	GetLeaf,
	RemapSameTranslationIsNoop,
	RemapDifferentOutputFlushesOnce,
	TlbFlushBatching,
	UnmapOfManyTablesFreesOnlyAfterInvalidation,
	SplitAndCollapseRoundTrip,
	SplitOnlyTouchesBlocksInRange,
	CollapseRejects,
	SplitAndCollapseKeepAccessedAndDirty,
	BadInputChangesNothing,
	MapOomStepping,
	SplitOomStepping,
	WrprotectReportsDirtyLeaves,
	UnmapReportsRemovedLeaves,
	UnmapSinkAndCallersCacheWhenSplitting,
	CallersTableCache,
	MapLosingTheRaceGivesBackItsTables,
	MapSyncsNewTablesBeforeLinkingThem,
	CollapseKeepsAccessedAndDirtySetUntilTheBreak,
	FuzzAgainstModel,
	ConcurrentMapAndAge);

} // namespace
