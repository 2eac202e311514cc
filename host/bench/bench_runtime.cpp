// SPDX-License-Identifier: GPL-2.0
// Host micro-benchmarks of the C++ core. Benchmark names are the figure
// names scripts/bench.sh reports: <component>.<name>. Figures are for the
// host platform (malloc, pthread locks with host lock checking), not for
// the kernel.
#include <stdlib.h>

#include <benchmark/benchmark.h>

#include <kvmmu/alloc.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu/lock.hpp>

namespace {

// The baseline of runtime.kmalloc_free_64, measured in the same run.
void malloc_free_64(benchmark::State &state)
{
	for (auto _ : state) {
		void *p = malloc(64);
		benchmark::DoNotOptimize(p);
		free(p);
	}
}
BENCHMARK(malloc_free_64)->Name("runtime.malloc_free_64");

void kmalloc_free_64(benchmark::State &state)
{
	for (auto _ : state) {
		void *p = kvmmu::kmalloc(64, 8, kvmmu::gfp::kernel);
		benchmark::DoNotOptimize(p);
		kvmmu::kfree(p);
	}
}
BENCHMARK(kmalloc_free_64)->Name("runtime.kmalloc_free_64");

void spin_guard_uncontended(benchmark::State &state)
{
	kvmmu::SpinLock lock;

	KVMMU_LOCK_INIT(lock);
	for (auto _ : state)
		kvmmu::SpinGuard g(lock);
}
BENCHMARK(spin_guard_uncontended)->Name("runtime.spin_guard_uncontended");

void vm_invalidate_pair(benchmark::State &state)
{
	kvmmu_vm *vm;

	if (kvmmu_vm_create(0, &vm)) {
		state.SkipWithError("kvmmu_vm_create failed");
		return;
	}
	for (auto _ : state) {
		if (kvmmu_vm_invalidate_range_start(vm, 0x1000, 0x2000, true) ||
		    kvmmu_vm_invalidate_range_end(vm, 0x1000, 0x2000)) {
			state.SkipWithError("invalidation failed");
			break;
		}
	}
	kvmmu_vm_destroy(vm);
}
BENCHMARK(vm_invalidate_pair)->Name("mmu.vm_invalidate_pair");

} // namespace

BENCHMARK_MAIN();
