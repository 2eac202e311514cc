// SPDX-License-Identifier: GPL-2.0
// Host tests of the page-table engine (mmu/pgtable), shared part: the
// hand-written description of every format (Spec<F>, Hw<F>), the test
// mm-ops, Env<F> and the typed fixture. See pgtable_test.cpp for what the
// tests cover and pgtable_cases.hpp for the typed cases.
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <kvmmu/alloc.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/platform.h>

#include "../../mmu/pgtable/pgtable_impl.hpp"
#include "host_test.hpp"

// The engine as the library instantiates it (mmu/pgtable/pgtable.cpp); the
// implementation header is included for its inline members only.
namespace kvmmu::pgt {
extern template class PageTable<Ept4>;
extern template class PageTable<Ept5>;
extern template class PageTable<ArmS2_4K_L3>;
extern template class PageTable<ArmS2_4K_L4>;
extern template class PageTable<ArmS2_16K_L3>;
extern template class PageTable<ArmS2_64K_L3>;
extern template class PageTable<PpcRadix4K>;
extern template class PageTable<PpcRadix64K>;
} // namespace kvmmu::pgt

namespace {

using namespace kvmmu::pgt;
using kvmmu::Result;
using kvmmu::u32;
using kvmmu::u64;
namespace gfp = kvmmu::gfp;

// ---------------------------------------------------------------------------
// The formats, described by hand from the manuals
// ---------------------------------------------------------------------------

enum class Kind { ept, arm, ppc };

struct Geo {
	const char *name;
	unsigned levels;
	unsigned shift[5];	// log2 of the bytes one entry at this level maps
	unsigned bits[5];	// index bits of a table at this level
	unsigned ia_bits;	// input-address bits the tables translate
	unsigned max_leaf;	// highest level that can hold a leaf (block)
	unsigned oa_bits;	// output-address bits a leaf can encode
};

template <class F> struct Spec;
// Intel SDM vol. 3C, 29.3.2: 4/5-level EPT, 9 index bits per level, 4K
// pages, 2M (PDE) and 1G (PDPTE) pages with PS=1, addresses 51:12.
template <> struct Spec<Ept4> {
	static constexpr Kind kind = Kind::ept;
	static constexpr Geo geo{"ept4", 4, {12, 21, 30, 39}, {9, 9, 9, 9}, 48, 2, 52};
};
template <> struct Spec<Ept5> {
	static constexpr Kind kind = Kind::ept;
	static constexpr Geo geo{"ept5", 5, {12, 21, 30, 39, 48}, {9, 9, 9, 9, 9}, 57, 2, 52};
};
// Arm ARM D8.2 (VMSAv8-64 stage 2): 4K granule with 9 bits per level,
// start level 1 (39-bit IPA, 3 levels) or 0 (48-bit, 4 levels), blocks at
// 2M and 1G; 16K granule with 11 bits, 47-bit IPA from level 1, blocks at
// 32M only; 64K granule with 13 bits, 48-bit IPA from level 1 whose table
// has 2^(48-42) = 64 entries, blocks at 512M only. Output address 47:granule.
template <> struct Spec<ArmS2_4K_L3> {
	static constexpr Kind kind = Kind::arm;
	static constexpr Geo geo{"arm4k_l3", 3, {12, 21, 30}, {9, 9, 9}, 39, 2, 48};
};
template <> struct Spec<ArmS2_4K_L4> {
	static constexpr Kind kind = Kind::arm;
	static constexpr Geo geo{"arm4k_l4", 4, {12, 21, 30, 39}, {9, 9, 9, 9}, 48, 2, 48};
};
template <> struct Spec<ArmS2_16K_L3> {
	static constexpr Kind kind = Kind::arm;
	static constexpr Geo geo{"arm16k_l3", 3, {14, 25, 36}, {11, 11, 11}, 47, 1, 48};
};
template <> struct Spec<ArmS2_64K_L3> {
	static constexpr Kind kind = Kind::arm;
	static constexpr Geo geo{"arm64k_l3", 3, {16, 29, 42}, {13, 13, 6}, 48, 1, 48};
};
// Power ISA v3.0B Book III 6.7.10: radix tree with a 13-bit root (RPDS),
// then 9, 9 and 9 (4K pages) or 9, 9 and 5 (64K pages) bits: 52-bit
// addresses, leaves at 2M and 1G as well; RPN in ISA bits 7:51 (56:12).
template <> struct Spec<PpcRadix4K> {
	static constexpr Kind kind = Kind::ppc;
	static constexpr Geo geo{"ppc4k", 4, {12, 21, 30, 39}, {9, 9, 9, 13}, 52, 2, 57};
};
template <> struct Spec<PpcRadix64K> {
	static constexpr Kind kind = Kind::ppc;
	static constexpr Geo geo{"ppc64k", 4, {16, 21, 30, 39}, {5, 9, 9, 13}, 52, 2, 57};
};

constexpr u64 B(unsigned n) { return u64(1) << n; }

// Raw entries as the hardware sees them, decoded by hand.
template <class F>
struct Hw {
	static constexpr Kind kind = Spec<F>::kind;
	static constexpr const Geo &geo = Spec<F>::geo;

	// The entry in register order. Radix entries are big-endian in memory
	// whatever the host: assemble them from the bytes.
	static u64 load(const u64 *slot)
	{
		if constexpr (kind == Kind::ppc) {
			unsigned char b[8];
			memcpy(b, slot, 8);
			u64 v = 0;
			for (int i = 0; i < 8; i++)
				v = v << 8 | b[i];
			return v;
		} else {
			return __atomic_load_n(slot, __ATOMIC_RELAXED);
		}
	}
	static void store(u64 *slot, u64 v)
	{
		if constexpr (kind == Kind::ppc) {
			unsigned char b[8];
			for (int i = 0; i < 8; i++)
				b[i] = (unsigned char)(v >> (56 - 8 * i));
			memcpy(slot, b, 8);
		} else {
			__atomic_store_n(slot, v, __ATOMIC_RELAXED);
		}
	}
	// EPT: present if any of R/W/X (bits 2:0); Arm: bit 0; radix: V (63).
	static bool present(u64 e)
	{
		if constexpr (kind == Kind::ept)
			return e & 7;
		else if constexpr (kind == Kind::arm)
			return e & 1;
		else
			return e >> 63;
	}
	// EPT: present and PS (bit 7) clear; Arm: bits 1:0 = 0b11 above the
	// last level; radix: V set, L (62) clear.
	static bool is_table(u64 e, unsigned level)
	{
		if (!level)
			return false;
		if constexpr (kind == Kind::ept)
			return (e & 7) && !(e & B(7));
		else if constexpr (kind == Kind::arm)
			return (e & 3) == 3;
		else
			return (e >> 63) && !((e >> 62) & 1);
	}
	static bool is_leaf(u64 e, unsigned level) { return present(e) && !is_table(e, level); }
	// Next-level table address: EPT 51:12, Arm 47:granule, radix NLB 59:8.
	static u64 next(u64 e)
	{
		if constexpr (kind == Kind::ept)
			return e & 0x000ffffffffff000;
		else if constexpr (kind == Kind::arm)
			return e & 0x0000ffffffffffff & ~(B(geo.shift[0]) - 1);
		else
			return e & 0x0fffffffffffff00;
	}
	// Leaf output address: EPT 51:12, Arm 47:granule, radix RPN 56:12.
	static u64 leaf_oa(u64 e)
	{
		if constexpr (kind == Kind::ept)
			return e & 0x000ffffffffff000;
		else if constexpr (kind == Kind::arm)
			return e & 0x0000ffffffffffff & ~(B(geo.shift[0]) - 1);
		else
			return e & 0x01fffffffffff000;
	}
	// Accessed: EPT A bit 8, Arm AF bit 10, radix R bit 8.
	static constexpr u64 young_bit = kind == Kind::ept ? B(8) : kind == Kind::arm ? B(10) : B(8);
	// Dirty: EPT D bit 9, radix C bit 7; Arm stage 2 without DBM has none.
	static constexpr u64 dirty_bit = kind == Kind::ept ? B(9) : kind == Kind::arm ? 0 : B(7);
	// What write-protection clears: EPT W; Arm S2AP[1] (bit 7) and DBM
	// (51); radix EAA write (bit 1) and C (bit 7).
	static constexpr u64 wrprotect_clears =
		kind == Kind::ept ? B(1) : kind == Kind::arm ? (B(7) | B(51)) : (B(1) | B(7));
	// The software "locked" value held between break and make.
	static constexpr u64 locked = kind == Kind::ept ? B(11) : kind == Kind::arm ? B(55) : B(61);
	// Dirty right after map(): EPT leaves D to the processor; Arm counts
	// writable as dirty; radix presets C on writable leaves.
	static bool dirty_at_map(u32 prot) { return kind == Kind::ept ? false : bool(prot & kWrite); }
	static bool can_set_hw_dirty() { return dirty_bit != 0; }
};

constexpr u64 S(const Geo &g, unsigned level) { return B(g.shift[level]); }

// ---------------------------------------------------------------------------
// Test MmOps and environment
// ---------------------------------------------------------------------------

// CachedMmOps that counts and records TLB invalidations and checks that no
// table is freed before an invalidation in the same operation. The hooks
// (set by single-threaded tests only) let a test act as the hardware or as
// another thread at a precise point of an operation.
class TestMmOps final : public CachedMmOps {
public:
	explicit TestMmOps(TableCache &c) : CachedMmOps(c) {}

	void *alloc_table(size_t bytes) override
	{
		nalloc.fetch_add(1);
		return CachedMmOps::alloc_table(bytes);
	}
	void unused_table(void *table, size_t bytes) override
	{
		nunused.fetch_add(1);
		CachedMmOps::unused_table(table, bytes);
	}
	void free_table(void *table, size_t bytes) override
	{
		if (flushes.load() == op_start_flushes.load())
			freed_before_flush.fetch_add(1);
		nfree.fetch_add(1);
		CachedMmOps::free_table(table, bytes);
	}
	void get_table(void *table, unsigned n) override
	{
		CachedMmOps::get_table(table, n);
		if (on_get)
			on_get(table, n);
	}
	void flush_tlb_range(u64 ia, u64 size) override
	{
		flushes.fetch_add(1);
		{
			std::lock_guard<std::mutex> g(mu);
			ranges.emplace_back(ia, ia + size);
		}
		if (on_flush)
			on_flush(ia, size);
	}
	void sync_table(void *va, size_t len) override
	{
		if (record_syncs) {
			std::lock_guard<std::mutex> g(mu);
			syncs.emplace_back(reinterpret_cast<uintptr_t>(va), reinterpret_cast<uintptr_t>(va) + len);
		}
		if (on_sync)
			on_sync(va, len);
	}
	// Was every byte of [va, va + len) passed to sync_table()?
	bool synced(const void *va, size_t len)
	{
		std::lock_guard<std::mutex> g(mu);
		uintptr_t lo = reinterpret_cast<uintptr_t>(va), hi = lo + len;
		std::vector<std::pair<uintptr_t, uintptr_t>> v = syncs;
		std::sort(v.begin(), v.end());
		for (auto &x : v)
			if (x.first <= lo && x.second > lo)
				lo = x.second;
		return lo >= hi;
	}

	void clear_hooks()
	{
		on_get = nullptr;
		on_flush = nullptr;
		on_sync = nullptr;
		record_syncs = false;
		syncs.clear();
	}

	std::function<void(void *, unsigned)> on_get;
	std::function<void(u64, u64)> on_flush;
	std::function<void(void *, size_t)> on_sync;
	bool record_syncs = false;
	std::vector<std::pair<uintptr_t, uintptr_t>> syncs;

	// Starts a new operation: its flushes are counted from here.
	void begin()
	{
		op_start_flushes.store(flushes.load());
		std::lock_guard<std::mutex> g(mu);
		ranges.clear();
		merged_n = ~size_t(0);
	}
	u64 op_flushes() const { return flushes.load() - op_start_flushes.load(); }
	// Is [lo, hi) inside the union of the flushes since begin()?
	bool covered(u64 lo, u64 hi)
	{
		std::lock_guard<std::mutex> g(mu);
		if (merged_n != ranges.size()) { // merge once per new flush
			merged = ranges;
			std::sort(merged.begin(), merged.end());
			size_t n = 0;
			for (auto &x : merged) {
				if (n && x.first <= merged[n - 1].second)
					merged[n - 1].second = std::max(merged[n - 1].second, x.second);
				else
					merged[n++] = x;
			}
			merged.resize(n);
			merged_n = ranges.size();
		}
		auto it = std::upper_bound(merged.begin(), merged.end(), std::make_pair(lo, ~u64(0)));
		if (it == merged.begin())
			return false;
		--it;
		return it->first <= lo && it->second >= hi;
	}
	std::vector<std::pair<u64, u64>> flush_ranges()
	{
		std::lock_guard<std::mutex> g(mu);
		return ranges;
	}

	std::atomic<u64> flushes{0}, op_start_flushes{0}, nalloc{0}, nfree{0}, nunused{0}, freed_before_flush{0};

private:
	std::mutex mu;
	std::vector<std::pair<u64, u64>> ranges, merged;
	size_t merged_n = ~size_t(0);
};

// Clears the hooks when a test leaves (declared after what they capture,
// so that the page table's destruction does not call into dead locals).
struct HookScope {
	TestMmOps &ops;
	~HookScope() { ops.clear_hooks(); }
};

int rc(const Result<void> &r) { return r.to_errno(); }
template <class T> int rc(const Result<T> &r) { return r.to_errno(); }

const Attrs kRW{kRead | kWrite, MemType::normal_wb};
const Attrs kRO{kRead, MemType::normal_wb};

inline std::string attrs_str(const Attrs &a)
{
	std::ostringstream s;
	s << ((a.prot & kRead) ? "r" : "-") << ((a.prot & kWrite) ? "w" : "-") << ((a.prot & kExec) ? "x" : "-")
	  << (a.mt == MemType::normal_wb ? "/wb" : a.mt == MemType::normal_nc ? "/nc" : "/dev");
	return s.str();
}

inline std::string hex(u64 v)
{
	std::ostringstream s;
	s << "0x" << std::hex << v;
	return s.str();
}

// One page table with its lock, cache and MmOps; the helpers take the lock
// in the mode each operation needs and fill the cache outside it.
template <class F>
struct Env {
	using PT = PageTable<F>;
	using H = Hw<F>;
	static constexpr const Geo &G = Spec<F>::geo;
	static constexpr unsigned kRoot = Spec<F>::geo.levels - 1;

	kvmmu::RwLock lock;
	TableCache cache{PT::table_alloc_bytes()};
	TestMmOps ops{cache};
	PT *pt = nullptr;
	// The next map()/split() helper call runs with exactly this many
	// tables in the cache (then the limit is gone): partial failures.
	int starve = -1;

	Env()
	{
		KVMMU_LOCK_INIT(lock);
		auto r = PT::create(ops, lock, gfp::kernel);
		EXPECT_TRUE(r.ok());
		if (r.ok())
			pt = r.value();
	}
	~Env()
	{
		kvmmu::destroy(pt);
		cache.drain();
	}

	static constexpr u64 page() { return B(G.shift[0]); }
	static constexpr u64 size(unsigned level) { return B(G.shift[level]); }
	static constexpr u64 top() { return size(G.max_leaf); } // largest leaf

	void topup(unsigned n = TableCache::kCapacity)
	{
		if (!cache.topup(n, gfp::kernel).ok())
			ADD_FAILURE() << "TableCache::topup failed";
	}

	void topup_or_starve()
	{
		if (starve < 0)
			return topup();
		cache.drain();
		topup(unsigned(starve));
		starve = -1;
	}
	Result<void> map(u64 ia, u64 sz, u64 pa, Attrs a = kRW, u64 *done = nullptr)
	{
		topup_or_starve();
		ops.begin();
		kvmmu::ReadGuard g(lock);
		return pt->map(ia, sz, pa, a, done);
	}
	// map() with as many cache refills as it takes.
	void map_all(u64 ia, u64 sz, u64 pa, Attrs a = kRW)
	{
		u64 off = 0;
		while (off < sz) {
			u64 done = 0;
			auto r = map(ia + off, sz - off, pa + off, a, &done);
			if (r.ok())
				return;
			if (rc(r) != -ENOMEM || !done) {
				ADD_FAILURE() << "map_all: map(" << hex(ia + off) << ") = " << rc(r)
					      << " done " << hex(done);
				return;
			}
			off += done;
		}
	}
	Result<void> unmap(u64 ia, u64 sz, LeafSink *sink = nullptr)
	{
		topup();
		ops.begin();
		kvmmu::WriteGuard g(lock);
		return pt->unmap(ia, sz, sink);
	}
	Result<void> wrprotect(u64 ia, u64 sz, LeafSink *dirty = nullptr)
	{
		ops.begin();
		kvmmu::WriteGuard g(lock);
		return pt->wrprotect(ia, sz, dirty);
	}
	Result<bool> young(u64 ia, u64 sz)
	{
		ops.begin();
		kvmmu::ReadGuard g(lock);
		return pt->test_clear_young(ia, sz);
	}
	bool young_ok(u64 ia, u64 sz)
	{
		auto r = young(ia, sz);
		EXPECT_TRUE(r.ok());
		return r.ok() && r.value();
	}
	Result<void> split(u64 ia, u64 sz, unsigned level, u64 *done = nullptr)
	{
		topup_or_starve();
		ops.begin();
		kvmmu::WriteGuard g(lock);
		return pt->split(ia, sz, level, done);
	}
	void split_all(u64 ia, u64 sz, unsigned level)
	{
		u64 off = 0;
		while (off < sz) {
			u64 done = 0;
			auto r = split(ia + off, sz - off, level, &done);
			if (r.ok())
				return;
			if (rc(r) != -ENOMEM || !done) {
				ADD_FAILURE() << "split_all: " << rc(r);
				return;
			}
			off += done;
		}
	}
	Result<void> collapse(u64 ia, unsigned level)
	{
		ops.begin();
		kvmmu::WriteGuard g(lock);
		return pt->collapse(ia, level);
	}
	Leaf leaf(u64 ia)
	{
		kvmmu::ReadGuard g(lock);
		return pt->get_leaf(ia);
	}
	PtStats stats() const { return pt->stats(); }

	// --- this file's own walk of the tables -----------------------------
	u64 *root() const { return static_cast<u64 *>(kvmmu_plat_phys_to_virt(pt->root_pa())); }
	static u64 index(u64 ia, unsigned level) { return (ia >> G.shift[level]) & (B(G.bits[level]) - 1); }
	// The entry at `level` on the way to `ia`, or nullptr if the walk ends
	// above it.
	u64 *slot(u64 ia, unsigned level) const
	{
		u64 *t = root();
		for (unsigned l = kRoot;; l--) {
			u64 *s = &t[index(ia, l)];
			if (l == level)
				return s;
			u64 e = H::load(s);
			if (!H::is_table(e, l))
				return nullptr;
			t = static_cast<u64 *>(kvmmu_plat_phys_to_virt(H::next(e)));
		}
	}
	u64 raw(u64 ia, unsigned level) const
	{
		u64 *s = slot(ia, level);
		EXPECT_NE(s, nullptr) << "no table at level " << level << " for " << hex(ia);
		return s ? H::load(s) : 0;
	}
	// Sets hardware-managed bits in the leaf mapping ia, as the MMU would.
	void hw_set(u64 ia, u64 bits)
	{
		Leaf l = leaf(ia);
		ASSERT_TRUE(l.mapped);
		u64 *s = slot(ia, l.level);
		H::store(s, H::load(s) | bits);
	}

	// Every table: counts, reference counts (1 + valid entries), entry
	// encodings of table pointers, no entry left locked.
	testing::AssertionResult check_tree() const
	{
		u64 tables = 0;
		u64 leaves[kvmmu::pgt::kMaxLevels] = {};
		std::string err;
		walk_tables(root(), kRoot, 0, tables, err, leaves);
		if (!err.empty())
			return testing::AssertionFailure() << err;
		PtStats s = pt->stats();
		if (s.tables != tables)
			return testing::AssertionFailure() << "stats.tables " << s.tables << ", tables found " << tables;
		for (unsigned l = 0; l < kvmmu::pgt::kMaxLevels; l++)
			if (s.leaves[l] != leaves[l])
				return testing::AssertionFailure() << "stats.leaves[" << l << "] " << s.leaves[l]
								   << ", leaves found " << leaves[l];
		u64 root_bytes = std::max<u64>(u64(8) << G.bits[kRoot], kvmmu::kPageSize);
		if (s.table_bytes != root_bytes + (tables - 1) * PT::table_alloc_bytes())
			return testing::AssertionFailure() << "stats.table_bytes " << s.table_bytes;
		return testing::AssertionSuccess();
	}
	void walk_tables(u64 *t, unsigned level, u64 base, u64 &tables, std::string &err, u64 *leaves) const
	{
		tables++;
		u64 n = B(G.bits[level]), valid = 0;
		for (u64 i = 0; i < n; i++) {
			u64 e = H::load(&t[i]);
			u64 ia = base + i * size(level);
			if (e == H::locked && err.empty())
				err = "entry left locked at " + hex(ia);
			if (!H::present(e))
				continue;
			valid++;
			if (!H::is_table(e, level)) {
				if (level > G.max_leaf && err.empty())
					err = "leaf at level " + std::to_string(level);
				leaves[level]++;
				continue;
			}
			u64 next = H::next(e);
			if (next & ((u64(8) << G.bits[level - 1]) - 1))
				err = "misaligned table pointer " + hex(e);
			if constexpr (Spec<F>::kind == Kind::ppc) {
				if ((e & 0x1f) != G.bits[level - 1] && err.empty())
					err = "radix NLS " + std::to_string(e & 0x1f) + " at level " +
					      std::to_string(level);
			}
			walk_tables(static_cast<u64 *>(kvmmu_plat_phys_to_virt(next)), level - 1, ia, tables, err,
				    leaves);
		}
		int refs = kvmmu_plat_table_count(t);
		if (u64(refs) != 1 + valid && err.empty())
			err = "table at level " + std::to_string(level) + " for " + hex(base) + " has " +
			      std::to_string(valid) + " valid entries but reference count " + std::to_string(refs);
	}
	// The leaves that overlap [lo, hi), as (ia, level, raw), in order.
	std::vector<std::tuple<u64, unsigned, u64>> leaves(u64 lo, u64 hi) const
	{
		std::vector<std::tuple<u64, unsigned, u64>> v;
		find_leaves(root(), kRoot, 0, lo, hi, v);
		return v;
	}
	void find_leaves(u64 *t, unsigned level, u64 base, u64 lo, u64 hi,
			 std::vector<std::tuple<u64, unsigned, u64>> &v) const
	{
		for (u64 i = 0; i < B(G.bits[level]); i++) {
			u64 ia = base + i * size(level), e = H::load(&t[i]);
			if (ia + size(level) <= lo || ia >= hi || !H::present(e))
				continue;
			if (H::is_table(e, level))
				find_leaves(static_cast<u64 *>(kvmmu_plat_phys_to_virt(H::next(e))), level - 1, ia, lo,
					    hi, v);
			else
				v.emplace_back(ia, level, e);
		}
	}
	// Every non-zero entry, as (level, ia, raw): compares whole tables.
	std::vector<std::tuple<unsigned, u64, u64>> snapshot() const
	{
		std::vector<std::tuple<unsigned, u64, u64>> v;
		snap(root(), kRoot, 0, v);
		return v;
	}
	void snap(u64 *t, unsigned level, u64 base, std::vector<std::tuple<unsigned, u64, u64>> &v) const
	{
		for (u64 i = 0; i < B(G.bits[level]); i++) {
			u64 e = H::load(&t[i]);
			if (!e)
				continue;
			u64 ia = base + i * size(level);
			v.emplace_back(level, ia, e);
			if (H::is_table(e, level))
				snap(static_cast<u64 *>(kvmmu_plat_phys_to_virt(H::next(e))), level - 1, ia, v);
		}
	}
};

// The reference choice of leaves for map(ia, size, pa) into empty tables:
// at each address the largest leaf level whose size both the address and
// the output address are aligned to and which fits in the range.
struct RefLeaf {
	u64 ia;
	unsigned level;
};
inline std::vector<RefLeaf> greedy_leaves(const Geo &g, u64 ia, u64 size, u64 pa)
{
	std::vector<RefLeaf> v;
	for (u64 a = ia; a < ia + size;) {
		unsigned level = 0;
		for (unsigned l = g.max_leaf; l > 0; l--) {
			u64 s = S(g, l);
			if (!(a % s) && !((pa + (a - ia)) % s) && a + s <= ia + size) {
				level = l;
				break;
			}
		}
		v.push_back({a, level});
		a += S(g, level);
	}
	return v;
}
// Tables (below the root) that hold the first `n` of these leaves.
inline unsigned tables_for_leaves(const Geo &g, const std::vector<RefLeaf> &leaves, size_t n)
{
	std::set<std::pair<unsigned, u64>> t;
	for (size_t i = 0; i < n; i++)
		for (unsigned l = leaves[i].level; l + 1 < g.levels; l++)
			t.insert({l, leaves[i].ia >> g.shift[l + 1]});
	return unsigned(t.size());
}

// ---------------------------------------------------------------------------
// Typed tests over every format
// ---------------------------------------------------------------------------

template <class F>
class PgtableTest : public HostTest {
protected:
	using E = Env<F>;
	using H = Hw<F>;
	static constexpr const Geo &G = Spec<F>::geo;

	void SetUp() override
	{
		HostTest::SetUp();
		env = std::make_unique<E>();
		ASSERT_NE(env->pt, nullptr);
	}
	void TearDown() override
	{
		env.reset();
		HostTest::TearDown();
	}

	// An input address at a root-entry boundary, so that ranges around it
	// need tables under two root entries.
	static u64 root_boundary() { return S(G, G.levels - 1); }

	std::unique_ptr<E> env;
};

struct FormatName {
	template <class F> static std::string GetName(int) { return Spec<F>::geo.name; }
};

} // namespace
