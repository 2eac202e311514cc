// SPDX-License-Identifier: GPL-2.0
// Host benchmarks of the page-table engine (mmu/pgtable) on 4-level EPT:
// mapping, unmapping, write-protecting and aging 1 GiB of 4K pages, and
// the table memory that costs. scripts/bench.sh reports each benchmark's
// user counter (ns_per_page, bytes_per_page or bytes_per_block; the
// median of its repetitions) as pgtable.<name>, plus the speed-ups of the
// engine's map paths over the root-walk baseline below.
//
// Table memory comes from PoolMmOps: a pool filled before the timed part
// (as a TableCache is, but large enough for 1 GiB in one map() call) whose
// tables keep their reference counts in an array of atomics, as the kernel
// keeps them in struct page. The host platform keeps page reference counts
// in a mutex-protected hash map instead; the *_platform_refs figure is the
// one-call map with those (CachedMmOps), to show what that test double
// changes. The caller's MMU lock is taken once around each timed loop; the
// per-page map() and the baseline would pay the same for taking it per
// page. Figures are for this host, not for the kernel.
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <vector>

#include <benchmark/benchmark.h>

#include <kvmmu/alloc.hpp>
#include <kvmmu/lock.hpp>
#include <kvmmu/platform.h>

#include "../../mmu/pgtable/pgtable_impl.hpp"

// The engine as the library compiles it (mmu/pgtable/pgtable.cpp).
namespace kvmmu::pgt {
extern template class PageTable<Ept4>;
}

namespace {

using namespace kvmmu::pgt;
using kvmmu::u64;
using PT = PageTable<Ept4>;
using Clock = std::chrono::steady_clock;

constexpr u64 kPage = 4096, kGiB = u64(1) << 30, kPages = kGiB / kPage;
constexpr u64 kIa = kGiB;			 // [1G, 2G): one level-2 entry
constexpr u64 kPa = (u64(1) << 40) + kPage; // not 2M-aligned against kIa: 4K leaves only
const Attrs kRW{kRead | kWrite, MemType::normal_wb};

// Tables from a preallocated pool, reference counts in atomics. The root
// (allocated by PageTable::create from the page allocator) keeps its count
// in the platform.
class PoolMmOps final : public MmOps {
public:
	explicit PoolMmOps(size_t pages) : pages_(pages), refs_(new std::atomic<unsigned>[pages])
	{
		base_ = static_cast<char *>(aligned_alloc(kPage, pages * kPage));
		memset(base_, 0, pages * kPage);
		for (size_t i = pages; i-- > 0;)
			free_.push_back(base_ + i * kPage);
	}
	~PoolMmOps()
	{
		free(base_);
		delete[] refs_;
	}

	void *alloc_table(size_t bytes) override
	{
		if (free_.empty() || bytes > kPage)
			return nullptr;
		void *t = free_.back();
		free_.pop_back();
		ref(t).store(1, std::memory_order_relaxed);
		return t;
	}
	void unused_table(void *t, size_t bytes) override
	{
		memset(t, 0, bytes);
		free_.push_back(t);
	}
	// Zeroed when the pool is refilled, outside the timed part, as the
	// kernel zeroes pages when a cache is filled, not when they are freed.
	void free_table(void *t, size_t) override { dirty_.push_back(t); }
	void get_table(void *t, unsigned n) override
	{
		if (in_pool(t))
			ref(t).fetch_add(n, std::memory_order_relaxed);
		else
			kvmmu_plat_table_count_add_return(t, int(n));
	}
	unsigned put_table(void *t) override
	{
		if (in_pool(t))
			return ref(t).fetch_sub(1, std::memory_order_relaxed) - 1;
		return unsigned(kvmmu_plat_table_count_add_return(t, -1));
	}
	unsigned table_refs(void *t) override
	{
		return in_pool(t) ? ref(t).load(std::memory_order_relaxed) : unsigned(kvmmu_plat_table_count(t));
	}
	u64 to_phys(const void *va) override { return kvmmu_plat_virt_to_phys(va); }
	void *to_virt(u64 pa) override { return kvmmu_plat_phys_to_virt(pa); }
	void flush_tlb_range(u64, u64) override { flushes++; }

	void refill()
	{
		for (void *t : dirty_) {
			memset(t, 0, kPage);
			free_.push_back(t);
		}
		dirty_.clear();
	}
	size_t available() const { return free_.size(); }

	u64 flushes = 0;

private:
	bool in_pool(const void *t) const
	{
		return static_cast<const char *>(t) >= base_ && static_cast<const char *>(t) < base_ + pages_ * kPage;
	}
	std::atomic<unsigned> &ref(const void *t)
	{
		return refs_[size_t(static_cast<const char *>(t) - base_) / kPage];
	}

	char *base_;
	size_t pages_;
	std::atomic<unsigned> *refs_;
	std::vector<void *> free_, dirty_;
};

// The same, with table counts in the host platform (CachedMmOps).
class PlatformRefsMmOps final : public CachedMmOps {
public:
	explicit PlatformRefsMmOps(TableCache &unused) : CachedMmOps(unused) {}
	~PlatformRefsMmOps() { refill(0); }
	void *alloc_table(size_t bytes) override
	{
		if (pool_.empty() || bytes > kPage)
			return nullptr;
		void *t = pool_.back();
		pool_.pop_back();
		return t;
	}
	void unused_table(void *t, size_t bytes) override
	{
		kvmmu_plat_table_count_set(t, 1);
		memset(t, 0, bytes);
		pool_.push_back(t);
	}
	void flush_tlb_range(u64, u64) override {}
	void refill(size_t n)
	{
		while (pool_.size() > n) {
			TableCache::free_chunk(pool_.back(), kPage);
			pool_.pop_back();
		}
		while (pool_.size() < n) {
			void *t = kvmmu_plat_alloc_pages(0, (kvmmu::gfp::kernel | kvmmu::gfp::zero).raw());
			kvmmu_plat_table_count_set(t, 1);
			pool_.push_back(t);
		}
	}

private:
	std::vector<void *> pool_;
};

// A PageTable<Ept4> over some MmOps, with its lock.
struct Table {
	kvmmu::RwLock lock;
	PT *pt = nullptr;
	explicit Table(MmOps &ops)
	{
		KVMMU_LOCK_INIT(lock);
		auto r = PT::create(ops, lock, kvmmu::gfp::kernel);
		if (r.ok())
			pt = r.value();
	}
	~Table() { kvmmu::destroy(pt); }
	bool map_1g()
	{
		kvmmu::ReadGuard g(lock);
		return pt->map(kIa, kGiB, kPa, kRW).ok();
	}
};

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void report_ns_per_page(benchmark::State &state, double total_s, u64 pages)
{
	state.counters["ns_per_page"] = total_s * 1e9 / (double(state.iterations()) * double(pages));
}

// ---------------------------------------------------------------------------
// The baseline: a simple, honest reference of the per-page fault path
// without the engine's range walk. Per page: descend from the root reading
// each level's entry, allocate and link a missing table, write the leaf.
// Same encodings (format.hpp), same table memory and reference counting
// (MmOps), same compare-and-exchange publication as the engine.
// ---------------------------------------------------------------------------
inline bool publish(u64 *p, u64 old, u64 e)
{
	return __atomic_compare_exchange_n(p, &old, e, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

bool baseline_map_page(u64 *root, MmOps &ops, u64 ia, u64 pa, Attrs a)
{
	u64 *t = root;
	for (unsigned level = Ept4::levels - 1; level > 0; level--) {
		u64 *p = &t[(ia >> Ept4::shift_of(level)) & 511];
		u64 e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		if (!Ept4::table(e, level)) {
			void *nt = ops.alloc_table(kPage);
			if (!nt)
				return false;
			u64 ne = Ept4::make_table(ops.to_phys(nt), level);
			if (!publish(p, e, ne))
				return false; // single-threaded here
			ops.get_table(t);
			e = ne;
		}
		t = static_cast<u64 *>(ops.to_virt(Ept4::oa(e, level)));
	}
	u64 *p = &t[(ia >> Ept4::shift_of(0)) & 511];
	u64 old = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	if (!publish(p, old, Ept4::make_leaf(pa, 0, a)))
		return false;
	if (!Ept4::valid(old))
		ops.get_table(t);
	return true;
}

// Frees the baseline's tables back to the pool (untimed).
void baseline_free(PoolMmOps &ops, u64 *table, unsigned level)
{
	if (level > 0)
		for (unsigned i = 0; i < 512; i++)
			if (Ept4::table(table[i], level))
				baseline_free(ops, static_cast<u64 *>(ops.to_virt(Ept4::oa(table[i], level))), level - 1);
	ops.free_table(table, kPage);
}

constexpr size_t kPoolPages = 1100; // 1 GiB of 4K leaves takes 514 tables

void map_1g_root_walk_baseline(benchmark::State &state)
{
	PoolMmOps ops(kPoolPages);
	double total = 0;
	bool checked = false;
	for (auto _ : state) {
		auto *root = static_cast<u64 *>(ops.alloc_table(kPage));
		auto t0 = Clock::now();
		for (u64 i = 0; i < kPages; i++) {
			if (!baseline_map_page(root, ops, kIa + i * kPage, kPa + i * kPage, kRW)) {
				state.SkipWithError("baseline ran out of tables");
				return;
			}
		}
		auto t1 = Clock::now();
		total += seconds(t0, t1);
		state.SetIterationTime(seconds(t0, t1));
		if (!checked) {
			// The baseline builds what the engine builds.
			Table t(ops);
			if (!t.map_1g()) {
				state.SkipWithError("engine map failed");
				return;
			}
			kvmmu::ReadGuard g(t.lock);
			for (u64 i = 0; i < kPages; i += 4093) {
				Leaf l = t.pt->get_leaf(kIa + i * kPage);
				u64 *l3 = static_cast<u64 *>(ops.to_virt(Ept4::oa(root[(kIa >> 39) & 511], 3)));
				u64 *l2 = static_cast<u64 *>(ops.to_virt(Ept4::oa(l3[((kIa + i * kPage) >> 30) & 511], 2)));
				u64 *l1 = static_cast<u64 *>(ops.to_virt(Ept4::oa(l2[((kIa + i * kPage) >> 21) & 511], 1)));
				u64 e = l1[((kIa + i * kPage) >> 12) & 511];
				if (!l.mapped || l.level != 0 || Ept4::oa(e, 0) != l.oa || Ept4::attrs(e) != l.attrs) {
					state.SkipWithError("baseline and engine disagree");
					return;
				}
			}
			checked = true;
		}
		baseline_free(ops, root, Ept4::levels - 1);
		ops.refill();
	}
	report_ns_per_page(state, total, kPages);
}
BENCHMARK(map_1g_root_walk_baseline)
	->Name("pgtable.ept4_map_1g_4k_root_walk_baseline")
	->UseManualTime()
	->Iterations(10)
	->Unit(benchmark::kMillisecond);

// One map() call per 4K page, as a fault path would.
void map_1g_per_page(benchmark::State &state)
{
	PoolMmOps ops(kPoolPages);
	double total = 0;
	for (auto _ : state) {
		{
			Table t(ops);
			auto t0 = Clock::now();
			{
				kvmmu::ReadGuard g(t.lock);
				for (u64 i = 0; i < kPages; i++) {
					if (!t.pt->map(kIa + i * kPage, kPage, kPa + i * kPage, kRW).ok()) {
						state.SkipWithError("map failed");
						return;
					}
				}
			}
			auto t1 = Clock::now();
			total += seconds(t0, t1);
			state.SetIterationTime(seconds(t0, t1));
		}
		ops.refill();
	}
	report_ns_per_page(state, total, kPages);
}

// One map() call for the whole GiB: the engine's range path.
template <class Ops>
void map_1g_one_call_with(benchmark::State &state, Ops &ops, void (*refill)(Ops &))
{
	double total = 0;
	for (auto _ : state) {
		refill(ops);
		Table t(ops);
		auto t0 = Clock::now();
		bool ok = t.map_1g();
		auto t1 = Clock::now();
		if (!ok) {
			state.SkipWithError("map failed");
			return;
		}
		total += seconds(t0, t1);
		state.SetIterationTime(seconds(t0, t1));
	}
	refill(ops);
	report_ns_per_page(state, total, kPages);
}

void map_1g_one_call(benchmark::State &state)
{
	PoolMmOps ops(kPoolPages);
	map_1g_one_call_with<PoolMmOps>(state, ops, [](PoolMmOps &o) { o.refill(); });
}

void map_1g_one_call_platform_refs(benchmark::State &state)
{
	TableCache unused(kPage);
	PlatformRefsMmOps ops(unused);
	map_1g_one_call_with<PlatformRefsMmOps>(state, ops, [](PlatformRefsMmOps &o) { o.refill(600); });
}

// Operations on a mapped GiB of 4K leaves (mapped untimed).
template <class Op>
void on_mapped_1g(benchmark::State &state, Op op)
{
	PoolMmOps ops(kPoolPages);
	double total = 0;
	for (auto _ : state) {
		Table t(ops);
		if (!t.map_1g()) {
			state.SkipWithError("map failed");
			return;
		}
		auto t0 = Clock::now();
		bool ok = op(t);
		auto t1 = Clock::now();
		if (!ok) {
			state.SkipWithError("operation failed");
			return;
		}
		total += seconds(t0, t1);
		state.SetIterationTime(seconds(t0, t1));
		kvmmu::destroy(t.pt);
		t.pt = nullptr;
		ops.refill();
	}
	report_ns_per_page(state, total, kPages);
}

void unmap_1g(benchmark::State &state)
{
	on_mapped_1g(state, [](Table &t) {
		kvmmu::WriteGuard g(t.lock);
		return t.pt->unmap(kIa, kGiB).ok() && t.pt->stats().tables == 1;
	});
}

// The same, handing each removed leaf's last state to a LeafSink (as a
// caller transferring dirty/accessed to its pages does): the dropped
// subtree's leaves are each taken with an exchange and reported.
void unmap_1g_sink(benchmark::State &state)
{
	struct Sink final : LeafSink {
		u64 n = 0, young = 0;
		void removed(u64, u64, u64, Attrs, bool y, bool) override
		{
			n++;
			young += y;
		}
	} sink;
	on_mapped_1g(state, [&](Table &t) {
		kvmmu::WriteGuard g(t.lock);
		sink.n = sink.young = 0;
		return t.pt->unmap(kIa, kGiB, &sink).ok() && sink.n == kPages && sink.young == kPages;
	});
}

// Not aligned to the 1G entry: the engine cannot drop the subtree whole.
void unmap_1g_unaligned(benchmark::State &state)
{
	on_mapped_1g(state, [](Table &t) {
		kvmmu::WriteGuard g(t.lock);
		return t.pt->unmap(kIa + kPage, kGiB - 2 * kPage).ok();
	});
}

void wrprotect_1g(benchmark::State &state)
{
	on_mapped_1g(state, [](Table &t) {
		kvmmu::WriteGuard g(t.lock);
		return t.pt->wrprotect(kIa, kGiB).ok();
	});
}

void test_clear_young_1g(benchmark::State &state)
{
	on_mapped_1g(state, [](Table &t) {
		kvmmu::ReadGuard g(t.lock);
		auto r = t.pt->test_clear_young(kIa, kGiB);
		return r.ok() && r.value(); // fresh leaves are young
	});
}

#define PGT_TIMED(fn, name) BENCHMARK(fn)->Name(name)->UseManualTime()->Iterations(10)->Unit(benchmark::kMillisecond)
PGT_TIMED(map_1g_per_page, "pgtable.ept4_map_1g_4k_per_page");
PGT_TIMED(map_1g_one_call, "pgtable.ept4_map_1g_4k_one_call");
PGT_TIMED(map_1g_one_call_platform_refs, "pgtable.ept4_map_1g_4k_one_call_platform_refs");
PGT_TIMED(unmap_1g, "pgtable.ept4_unmap_1g_4k");
PGT_TIMED(unmap_1g_sink, "pgtable.ept4_unmap_1g_4k_sink");
PGT_TIMED(unmap_1g_unaligned, "pgtable.ept4_unmap_1g_4k_unaligned");
PGT_TIMED(wrprotect_1g, "pgtable.ept4_wrprotect_1g_4k");
PGT_TIMED(test_clear_young_1g, "pgtable.ept4_test_clear_young_1g_4k");

// Table memory (PtStats::table_bytes, root excluded) per mapped 4K page and
// per 2M block, over 1 GiB.
void table_bytes(benchmark::State &state, u64 pa, const char *counter, u64 units)
{
	PoolMmOps ops(kPoolPages);
	for (auto _ : state) {
		Table t(ops);
		u64 empty = t.pt->stats().table_bytes;
		{
			kvmmu::ReadGuard g(t.lock);
			if (!t.pt->map(kIa, kGiB, pa, kRW).ok()) {
				state.SkipWithError("map failed");
				return;
			}
		}
		state.counters[counter] = double(t.pt->stats().table_bytes - empty) / double(units);
		kvmmu::destroy(t.pt);
		t.pt = nullptr;
		ops.refill();
	}
}
void table_bytes_per_4k_page(benchmark::State &state) { table_bytes(state, kPa, "bytes_per_page", kPages); }
void table_bytes_per_2m_block(benchmark::State &state)
{
	// 2M- but not 1G-aligned: 512 blocks of 2M, no 1G leaf.
	table_bytes(state, (u64(1) << 40) + (u64(2) << 20), "bytes_per_block", kGiB >> 21);
}
BENCHMARK(table_bytes_per_4k_page)->Name("pgtable.ept4_table_bytes_per_4k_page")->Iterations(1);
BENCHMARK(table_bytes_per_2m_block)->Name("pgtable.ept4_table_bytes_per_2m_block")->Iterations(1);

} // namespace

BENCHMARK_MAIN();
