// SPDX-License-Identifier: GPL-2.0
// Host benchmark of the pfn cache (issue 11, seed 001): refresh completions
// and refresh latency of one cache while other threads invalidate memory
// that does not overlap the cache's page, for kvmmu's rule
// (PfnCache::Rule::exact) and upstream KVM's (Rule::baseline), in the same
// run, over the fake host mm of host/platform.cpp.
//
// Not a Google Benchmark program: the two rules are measured in alternating
// rounds (exact, baseline, baseline, exact, ...) so that a change of the
// machine's load during the run hits both alike, and the figures are
// computed from all rounds. It prints, on stdout, one line per figure
//   bench: pfncache.<name> = <value> <unit>
// (scripts/bench.sh takes them into build/bench.json); figures without a
// suffix are the exact rule's, "_baseline" ones upstream's; the ratios
// compare the two rules, or churn against quiet, within this run.
//
// The model:
//  - One VM with a 64 MiB slot; one cache per rule, by gpa, on pages of the
//    slot 32 MiB apart. The measuring thread (the "vCPU") calls
//    refresh(true) back to back: a forced refresh drops the mapping and
//    looks the page up again, so every call does the whole protocol (the
//    memslot lookup, the in-flight check or snapshot, GUP, kmap, publish).
//    Each call is timed; a call that returns 0 is a completion.
//  - Churn threads play the notifier of munmap()s elsewhere in the
//    process, as mmu.host_fault_rate_churn* do: invalidate_range_start,
//    kUnmapWork of CPU outside the VM's locks (the page-table teardown),
//    invalidate_range_end, back to back, on 64 KiB ranges that never
//    overlap either cache's page: half of them in the slot (guest memory
//    the caches do not map: the stage-2 zap and the cache index run), half
//    in memory no slot maps. The fake mm itself is left alone (its lock
//    would serialise the lookups with the churn, which the kernel's
//    GUP-fast does not).
//  - Upstream's rule retries while any invalidation is in flight in the VM
//    or any ended since its snapshot, so under this churn a baseline
//    refresh may never complete (the livelock of seed 001). Each measured
//    refresh of either rule is bounded: past kBound, the cache's test hook
//    at Point::retrying makes the thread's signal pending, refresh()
//    returns -EINTR, and the call is counted as interrupted, not as a
//    completion. Completions per second are completions per wall-clock
//    second of the rule's rounds, interrupted calls' time included.
//  - p99 latency is over completed calls. Quiet latency (no churn) is the
//    median over the rounds of each round's median call; the
//    exact/baseline ratio is the median of the rounds' ratios (a preempted
//    round moves neither much).
// Everything runs on the machine's CPUs as they are (2 here, shared): with
// N churners, the refresher has the CPU share the scheduler gives it, and
// (unlike in the kernel, where the MMU lock and the cache index's lock are
// spinlocks whose holders are not preempted) a churner preempted while it
// holds one of those host locks keeps the refresher waiting until it runs
// again. The exact rule's p99 under churn against quiet therefore includes
// the cost of running next to N busy threads, not only the rule's own; the
// baseline's figures include the same. The "_nice" figures run the
// churners at nice 19 (a VMM's background threads next to a vCPU thread),
// which leaves mostly the rules' own cost, as mmu.host_fault_rate_*_nice do.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <kvmmu/alloc.hpp>
#include <kvmmu/hooks.h>
#include <kvmmu_host.h>

#include "../../mmu/vm.hpp"
#include "../../pfncache/pfncache.hpp"

namespace {

using namespace kvmmu;
using Clock = std::chrono::steady_clock;

constexpr u64 kVmHva = 0x200000000;
constexpr u64 kVmGpa = 0x80000000;
constexpr u64 kVmBytes = 64 << 20;
constexpr u64 kCacheOff[2] = {4 << 20, 36 << 20}; // exact's, baseline's page in the slot
constexpr u64 kFarHva = 0x400000000;		    // no slot, far from the slot
constexpr u64 kChurnBytes = 64 << 10;
constexpr auto kUnmapWork = std::chrono::nanoseconds(1000);
constexpr auto kBound = std::chrono::milliseconds(2); // per refresh call
constexpr int kChurnN = 4;

// Round lengths and counts (quiet, then churn 1 and N, plain and niced);
// about 23 s in all.
constexpr auto kQuietRound = std::chrono::milliseconds(150);
constexpr int kQuietRounds = 10;
constexpr auto kChurnRound = std::chrono::milliseconds(400);
constexpr int kChurnRounds = 6;

struct Bound {
	Clock::time_point deadline;
};

void bound_hook(PfnCache &, PfnCache::Point p, void *arg)
{
	if (p == PfnCache::Point::retrying && Clock::now() >= static_cast<Bound *>(arg)->deadline)
		kvmmu_host_set_signal_pending(true); // on the refreshing thread
}

// What one rule's calls of one kind (quiet, churn1, ...) added up to.
struct Tally {
	std::vector<u32> lat_ns; // completed calls
	u64 done = 0, interrupted = 0;
	double seconds = 0, interrupted_s = 0; // all calls', interrupted calls' time
	std::vector<double> round_p50_ns; // per round: its median completed call

	double rate() const { return seconds > 0 ? double(done) / seconds : 0; }
	double pct(double q)
	{
		if (lat_ns.empty())
			return 0;
		size_t k = size_t(q * double(lat_ns.size() - 1));
		std::nth_element(lat_ns.begin(), lat_ns.begin() + long(k), lat_ns.end());
		return lat_ns[k];
	}
};

struct Bench {
	kvmmu_host_mm *mm;
	kvmmu_vm *cvm;
	Vm *vm;
	PfnCache *cache[2]; // exact, baseline
	Bound bound;

	Bench()
	{
		mm = kvmmu_host_mm_create();
		kvmmu_host_set_current_mm(mm);
		if (kvmmu_host_mm_map(mm, kVmHva, kVmBytes, KVMMU_HOST_MAP_WRITE) || kvmmu_vm_create(0, &cvm))
			die("VM setup failed");
		kvmmu_memory_region r{0, 0, kVmGpa, kVmBytes, kVmHva};
		if (kvmmu_vm_set_memory_region(cvm, &r))
			die("memslot setup failed");
		vm = reinterpret_cast<Vm *>(cvm);
		for (int i = 0; i < 2; i++) {
			auto c = PfnCache::create(*vm, i ? PfnCache::Rule::baseline : PfnCache::Rule::exact);
			if (!c || !c.value()->activate_gpa(Gpa(kVmGpa + kCacheOff[i]), 8))
				die("cache setup failed");
			cache[i] = c.value();
			cache[i]->set_test_hook(bound_hook, &bound);
			if (!cache[i]->refresh())
				die("first refresh failed");
		}
	}
	~Bench()
	{
		for (PfnCache *c : cache)
			destroy(c);
		kvmmu_vm_destroy(cvm);
		kvmmu_host_set_current_mm(nullptr);
		kvmmu_host_mm_destroy(mm);
	}
	[[noreturn]] static void die(const char *what)
	{
		fprintf(stderr, "bench_pfncache: %s\n", what);
		exit(1);
	}

	// Refreshes cache `rule` back to back for `len`; adds to t.
	void round(int rule, Clock::duration len, Tally &t)
	{
		PfnCache &c = *cache[rule];
		const size_t first = t.lat_ns.size();
		const auto t0 = Clock::now(), end = t0 + len;
		auto now = t0;
		while (now < end) {
			const auto s = now;
			bound.deadline = s + kBound;
			auto r = c.refresh(true);
			now = Clock::now();
			if (r) {
				t.done++;
				t.lat_ns.push_back(u32(std::min<long long>(
					std::chrono::duration_cast<std::chrono::nanoseconds>(now - s).count(),
					0xffffffff)));
			} else if (r.to_errno() == -EINTR) {
				t.interrupted++;
				t.interrupted_s += std::chrono::duration<double>(now - s).count();
				kvmmu_host_set_signal_pending(false);
			} else {
				die("refresh failed");
			}
		}
		t.seconds += std::chrono::duration<double>(now - t0).count();
		std::vector<u32> mine(t.lat_ns.begin() + long(first), t.lat_ns.end());
		if (!mine.empty()) {
			std::nth_element(mine.begin(), mine.begin() + long(mine.size() / 2), mine.end());
			t.round_p50_ns.push_back(mine[mine.size() / 2]);
		}
	}
};

// N threads invalidating unrelated ranges until stopped.
struct Churn {
	std::atomic<bool> stop{false};
	std::atomic<u64> invalidations{0};
	std::vector<std::thread> threads;

	Churn(kvmmu_vm *vm, int nthreads, bool niced)
	{
		for (int t = 0; t < nthreads; t++)
			threads.emplace_back([this, vm, t, niced] {
				if (niced && setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), 19))
					abort();
				u64 n = 0;
				while (!stop.load(std::memory_order_relaxed)) {
					// Slot ranges: 8..31 MiB, 40..63 MiB of the slot,
					// never the caches' pages (4 MiB and 36 MiB in).
					const u64 k = n++;
					const u64 in = (k / 2 + u64(t) * 7) % 24;
					const u64 hva = (k & 1) ? kFarHva + ((u64(t) * 64 + k % 64) * kChurnBytes)
								: kVmHva + ((in < 12 ? 8 : 40) << 20) +
									  (in % 12) * (2 << 20);
					if (kvmmu_vm_invalidate_range_start(vm, hva, hva + kChurnBytes, true))
						abort();
					const auto until = Clock::now() + kUnmapWork;
					while (Clock::now() < until)
						;
					if (kvmmu_vm_invalidate_range_end(vm, hva, hva + kChurnBytes))
						abort();
				}
				invalidations.fetch_add(n);
			});
	}
	u64 finish()
	{
		stop.store(true);
		for (auto &t : threads)
			t.join();
		return invalidations.load();
	}
};

void figure(const char *name, double v, const char *unit)
{
	printf("bench: pfncache.%s = %.3f %s\n", name, v, unit);
	fflush(stdout);
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	const size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

} // namespace

int main()
{
	Bench b;
	const char *sfx[2] = {"", "_baseline"};

	// Quiet: latency of each rule, no invalidations at all.
	Tally quiet[2];
	std::vector<double> ratios;
	for (int r = 0; r < kQuietRounds; r++) {
		const int first = r & 1; // alternate which rule goes first
		b.round(first, kQuietRound, quiet[first]);
		b.round(!first, kQuietRound, quiet[!first]);
		ratios.push_back(quiet[0].round_p50_ns.back() / quiet[1].round_p50_ns.back());
	}
	for (int i = 0; i < 2; i++) {
		char n[64];
		snprintf(n, sizeof(n), "quiet_refresh_ns%s", sfx[i]);
		figure(n, median(quiet[i].round_p50_ns), "ns");
		snprintf(n, sizeof(n), "quiet_p99_ns%s", sfx[i]);
		figure(n, quiet[i].pct(0.99), "ns");
	}
	figure("quiet_latency_ratio", median(ratios), "x");
	const double quiet_p99 = quiet[0].pct(0.99);

	// Churn: 1 and N threads invalidating unrelated ranges, at the
	// refresher's priority and at nice 19.
	for (int k = 0; k < 4; k++) {
		const int nchurn = k & 1 ? kChurnN : 1;
		const bool niced = k >= 2;
		char kind[32];
		snprintf(kind, sizeof(kind), "churn%d%s", nchurn, niced ? "_nice" : "");
		const PfnCacheStats before[2] = {b.cache[0]->stats(), b.cache[1]->stats()};
		Tally t[2];
		Churn churn(b.cvm, nchurn, niced);
		const auto t0 = Clock::now();
		for (int r = 0; r < kChurnRounds; r++) {
			const int first = r & 1;
			b.round(first, kChurnRound, t[first]);
			b.round(!first, kChurnRound, t[!first]);
		}
		const u64 inv = churn.finish();
		const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
		char n[64];
		for (int i = 0; i < 2; i++) {
			const PfnCacheStats s = b.cache[i]->stats();
			const u64 calls = t[i].done + t[i].interrupted;
			snprintf(n, sizeof(n), "%s_refreshes_per_s%s", kind, sfx[i]);
			figure(n, t[i].rate(), "refreshes/s");
			snprintf(n, sizeof(n), "%s_p99_ns%s", kind, sfx[i]);
			figure(n, t[i].pct(0.99), "ns");
			snprintf(n, sizeof(n), "%s_interrupted%s", kind, sfx[i]);
			figure(n, double(t[i].interrupted), "calls");
			// The share of the rule's time spent in calls that never
			// completed (livelocked until the bound).
			snprintf(n, sizeof(n), "%s_interrupted_time_share%s", kind, sfx[i]);
			figure(n, t[i].interrupted_s / t[i].seconds, "x");
			snprintf(n, sizeof(n), "%s_retries_per_call%s", kind, sfx[i]);
			figure(n, calls ? double(s.retries - before[i].retries) / double(calls) : 0,
			       "retries/call");
			if (i == 0) {
				snprintf(n, sizeof(n), "%s_waits", kind);
				figure(n, double(s.waits - before[0].waits), "waits");
			}
		}
		snprintf(n, sizeof(n), "%s_invalidations_per_s", kind);
		figure(n, double(inv) / secs, "invalidations/s");
		// Exact against baseline: if no baseline call completed at all,
		// the ratio is against one completion in the baseline's time, a
		// lower bound (and the unit says so).
		const bool none = t[1].done == 0;
		const double base_rate = none ? 1.0 / t[1].seconds : t[1].rate();
		snprintf(n, sizeof(n), "%s_completions_ratio", kind);
		figure(n, t[0].rate() / base_rate, none ? "x (at least: no baseline refresh completed)" : "x");
		snprintf(n, sizeof(n), "%s_p99_vs_quiet", kind);
		figure(n, t[0].pct(0.99) / quiet_p99, "x");
	}
	return 0;
}
