// SPDX-License-Identifier: GPL-2.0
// Host benchmarks of issue 5's core: memslot lookup by gfn with 1, 512 and
// 32767 slots (the goal: 32767 slots cost at most 2x one slot, compared in
// the same run by scripts/bench.sh), and the fault path and invalidation
// over the fake host mm of host/platform.cpp.
#include <stdlib.h>

#include <chrono>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <kvmmu/hooks.h>
#include <kvmmu_host.h>

#include "../../mmu/memslot.hpp"

namespace {

using namespace kvmmu;

constexpr u64 kSlotBytes = 2 << 20;	// each slot: 2 MiB
constexpr u64 kSlotGap = 4 << 20;	// slots 4 MiB apart: holes between them
constexpr u64 kHvaBase = 0x100000000000;

// `n` slots, built once per size and kept for every benchmark of that size.
Memslots *slots_of(unsigned n)
{
	static Memslots *made[3];
	unsigned i = n == 1 ? 0 : n == 512 ? 1 : 2;
	if (made[i])
		return made[i];
	auto *m = new Memslots;
	if (!m->init())
		abort();
	for (unsigned s = 0; s < n; s++) {
		MemslotDesc d;
		d.id = s;
		d.gpa = u64(s) * kSlotGap;
		d.size = kSlotBytes;
		d.hva = kHvaBase + u64(s) * kSlotBytes;
		if (!m->update(d))
			abort();
	}
	made[i] = m;
	return m;
}

// Random gfns inside the slots, the same sequence for every size.
std::vector<Gfn> lookups(unsigned n)
{
	std::mt19937_64 rng(42);
	std::vector<Gfn> v(1 << 16);
	for (auto &g : v) {
		u64 slot = rng() % n;
		u64 off = rng() % (kSlotBytes >> kPageShift);
		g = to_gfn(Gpa(slot * kSlotGap)) + off;
	}
	return v;
}

void memslot_lookup(benchmark::State &state)
{
	const unsigned n = unsigned(state.range(0));
	Memslots *m = slots_of(n);
	std::vector<Gfn> gfns = lookups(n);
	Memslots::ReadSection rs(*m);
	const MemslotSet &set = rs.set();
	size_t i = 0;
	for (auto _ : state) {
		const Memslot *s = set.find_gfn(gfns[i++ & (gfns.size() - 1)]);
		benchmark::DoNotOptimize(s);
	}
	if (set.find_gfn(gfns[0]) == nullptr)
		state.SkipWithError("lookup missed");
}
BENCHMARK(memslot_lookup)->Name("mmu.memslot_lookup_1")->Arg(1);
BENCHMARK(memslot_lookup)->Name("mmu.memslot_lookup_512")->Arg(512);
BENCHMARK(memslot_lookup)->Name("mmu.memslot_lookup_32767")->Arg(32767);

// ---------------------------------------------------------------------------
// Fault path and invalidation over the fake host mm
// ---------------------------------------------------------------------------
constexpr u64 kVmHva = 0x40000000;
constexpr u64 kVmGpa = 0x80000000;
constexpr u64 kVmBytes = 256 << 20;

struct BenchVm {
	kvmmu_host_mm *mm;
	kvmmu_vm *vm;
	explicit BenchVm(unsigned host_flags)
	{
		mm = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm);
		if (kvmmu_host_mm_map(mm, kVmHva, kVmBytes, KVMMU_HOST_MAP_WRITE | host_flags) ||
		    kvmmu_vm_create(0, &vm))
			abort();
		kvmmu_memory_region r{0, 0, kVmGpa, kVmBytes, kVmHva};
		if (kvmmu_vm_set_memory_region(vm, &r))
			abort();
	}
	~BenchVm()
	{
		kvmmu_vm_destroy(vm);
		kvmmu_host_set_current_mm(nullptr);
		kvmmu_host_mm_destroy(mm);
	}
};

// Faulting 256 MiB in, page by page (4K backing) or block by block (2M
// backing); ns per base page.
void fault_in(benchmark::State &state)
{
	BenchVm b(state.range(0) ? KVMMU_HOST_MAP_HUGE : 0);
	const u64 pages = kVmBytes >> kPageShift;
	double total = 0;
	for (auto _ : state) {
		auto t0 = std::chrono::steady_clock::now();
		if (kvmmu_vm_pre_fault(b.vm, kVmGpa, kVmBytes, 0)) {
			state.SkipWithError("pre_fault failed");
			break;
		}
		double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		total += s;
		state.SetIterationTime(s);
		// Untimed: drop everything for the next round.
		if (kvmmu_vm_invalidate_range_start(b.vm, kVmHva, kVmHva + kVmBytes, true) ||
		    kvmmu_vm_invalidate_range_end(b.vm, kVmHva, kVmHva + kVmBytes))
			abort();
	}
	state.counters["ns_per_page"] = total * 1e9 / (double(state.iterations()) * double(pages));
}
BENCHMARK(fault_in)->Name("mmu.host_fault_in_4k")->Arg(0)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(fault_in)->Name("mmu.host_fault_in_2m")->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);

// Invalidating one 4K page of a VM with 256 MiB mapped, and all of it.
void invalidate(benchmark::State &state)
{
	BenchVm b(0);
	const u64 len = state.range(0) ? kVmBytes : (u64(1) << kPageShift);
	const u64 hva = kVmHva + (state.range(0) ? 0 : kVmBytes / 2);
	if (kvmmu_vm_pre_fault(b.vm, kVmGpa, kVmBytes, 0))
		abort();
	for (auto _ : state) {
		state.PauseTiming();
		// Map again what the last round invalidated.
		if (kvmmu_vm_pre_fault(b.vm, kVmGpa + (hva - kVmHva), len, 0))
			abort();
		state.ResumeTiming();
		if (kvmmu_vm_invalidate_range_start(b.vm, hva, hva + len, true) ||
		    kvmmu_vm_invalidate_range_end(b.vm, hva, hva + len))
			abort();
	}
}
BENCHMARK(invalidate)->Name("mmu.host_invalidate_4k_of_256m")->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(invalidate)->Name("mmu.host_invalidate_all_256m")->Arg(1)->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
