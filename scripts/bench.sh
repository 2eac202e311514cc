#!/usr/bin/env bash
# Host micro-benchmarks of the C++ core (host/bench, Google Benchmark), built
# in Release in build/host/bench.
# usage: scripts/bench.sh
# Prints one line per figure on stdout:
#   bench: <component>.<name> = <value> <unit>
# and writes them to build/bench.json as
#   {"<component>.<name>": {"value": v, "unit": "u"}, ...}
# Google Benchmark's own JSON output is kept in build/bench-raw.json
# (bench_runtime), build/bench-raw-pgtable.json (bench_pgtable) and
# build/bench-raw-mmu.json (bench_mmu). The fault-in and invalidation
# figures of mmu.* without "host_" are measured inside QEMU on the stock
# x86_64 kernel with real process memory (selftests/mmu/fault_perf_test
# --perf; skip with KVMMU_BENCH_QEMU=0).
# kvm.* are upstream's demand_paging_test (the guest's time to fault in
# 16 MiB, 4096 pages, one vCPU) and kvm_page_table_test (its create,
# update and adjust phases) on the arm64 "kvm" kernel (docs/kvm.md), each the minimum
# of 3 runs, with KVM's own stage 2 (kvm.own.*) and with kvmmu's
# (kvm.kvmmu.*) in the same QEMU run, and kvm.ratio.* = kvmmu / own
# (scripts/initramfs/kvm-run; skip with KVMMU_BENCH_KVM=0).
# Each figure is the median of 5 repetitions: a benchmark's real time, or
# for pgtable.* its one user counter (ns_per_page, bytes_per_page,
# bytes_per_block), whose name gives the unit; mmu.host_fault_rate_* (issue
# 10, defect 3: faults under unrelated munmap churn, range-exact rule and
# the legacy baseline) report faults_per_s, plus <name>_retries_per_fault,
# and their churn/quiet ratios are computed here (the guest's part prints
# its own).
# pfncache.* come from bench_pfncache (not Google Benchmark: it alternates
# kvmmu's refresh rule and upstream's baseline in rounds of one run and
# prints its own "bench:" lines, ratios included, kept in
# build/bench-raw-pfncache.txt): forced refreshes per second and their p99
# latency while 1 or 4 threads invalidate unrelated ranges (also at nice
# 19: "_nice"), quiet latency; "_baseline" figures are upstream's rule,
# *_completions_ratio and quiet_latency_ratio are exact over baseline,
# *_p99_vs_quiet the exact rule's churn p99 over its quiet p99
# (host/bench/bench_pfncache.cpp says how they are measured).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=$KVMMU_BUILD/host/bench
raw=$KVMMU_BUILD/bench-raw.json
raw_pgtable=$KVMMU_BUILD/bench-raw-pgtable.json
raw_mmu=$KVMMU_BUILD/bench-raw-mmu.json
raw_pfncache=$KVMMU_BUILD/bench-raw-pfncache.txt
guest=$KVMMU_BUILD/bench-guest.txt
out=$KVMMU_BUILD/bench.json

ensure_pkgs cmake g++-12 libgtest-dev libbenchmark-dev python3

log "building benchmarks in $dir"
{ cmake -S "$KVMMU_ROOT/host" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKVMMU_BENCH=ON &&
	cmake --build "$dir" -j"$JOBS" --target bench_runtime bench_pgtable bench_mmu bench_pfncache; } >&2

log "running benchmarks"
"$dir/bench_runtime" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw"
"$dir/bench_pgtable" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw_pgtable"
"$dir/bench_mmu" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw_mmu"
"$dir/bench_pfncache" >"$raw_pfncache"

: >"$guest"
if [ "${KVMMU_BENCH_QEMU:-1}" != 0 ]; then
	log "running the fault-path benchmarks in QEMU (x86_64 stock kernel)"
	"$KVMMU_ROOT/scripts/check-kernel.sh" x86_64 stock bench 2>&2 |
		grep -E '^bench: ' >"$guest" || die "in-guest benchmarks failed"
fi
if [ "${KVMMU_BENCH_KVM:-1}" != 0 ]; then
	log "running upstream's KVM selftests as benchmarks (arm64 kvm kernel, with and without kvmmu)"
	"$KVMMU_ROOT/scripts/check-kernel.sh" arm64 kvm bench 2>&2 |
		grep -E '^bench: ' >>"$guest" || die "kvm benchmarks failed"
fi

python3 - "$out" "$guest" "$raw_pfncache" "$raw" "$raw_pgtable" "$raw_mmu" <<'EOF'
import json
import re
import sys

out_path, line_paths, raw_paths = sys.argv[1], sys.argv[2:4], sys.argv[4:]
# User counters that are a benchmark's figure, and their units.
counter_units = {"ns_per_page": "ns/page", "bytes_per_page": "B/page",
                 "bytes_per_block": "B/block", "faults_per_s": "faults/s"}
# Further counters reported as figures of their own, <name>_<counter>.
extra_units = {"retries_per_fault": "retries/fault"}

figures = {}
for raw_path in raw_paths:
    with open(raw_path) as f:
        raw = json.load(f)
    for b in raw["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"bench: {b['run_name']} failed: {b.get('error_message')}")
        if b.get("aggregate_name") != "median":
            continue
        # Without Google Benchmark's "/iterations:N/manual_time" suffixes.
        name = b["run_name"].split("/")[0]
        for c, unit in extra_units.items():
            if c in b:
                figures[f"{name}_{c}"] = {"value": b[c], "unit": unit}
        counters = [c for c in counter_units if c in b]
        if counters:
            figures[name] = {"value": b[counters[0]], "unit": counter_units[counters[0]]}
        else:
            figures[name] = {"value": b["real_time"], "unit": b["time_unit"]}

# The cost of kvmmu's allocation path over the C library's, same run.
kmalloc = figures["runtime.kmalloc_free_64"]
malloc = figures["runtime.malloc_free_64"]
assert kmalloc["unit"] == malloc["unit"]
figures["runtime.kmalloc_vs_malloc_ratio"] = {
    "value": kmalloc["value"] / malloc["value"], "unit": "x"}

# The page-table engine's map paths against the per-page root-walk
# baseline of the same run: how many times faster (> 1: the engine wins).
base = figures["pgtable.ept4_map_1g_4k_root_walk_baseline"]
for path in ("per_page", "one_call"):
    fig = figures[f"pgtable.ept4_map_1g_4k_{path}"]
    assert fig["unit"] == base["unit"] == "ns/page"
    figures[f"pgtable.ept4_map_1g_4k_{path}_speedup_vs_baseline"] = {
        "value": base["value"] / fig["value"], "unit": "x"}

# Memslot lookup: 32767 slots against one, same run (goal <= 2x).
one = figures["mmu.memslot_lookup_1"]
for n in (512, 32767):
    fig = figures[f"mmu.memslot_lookup_{n}"]
    assert fig["unit"] == one["unit"]
    figures[f"mmu.memslot_lookup_{n}_vs_1"] = {"value": fig["value"] / one["value"], "unit": "x"}
# Host fault-in: 2M-backed against 4K-backed, per base page.
figures["mmu.host_fault_in_4k_vs_2m"] = {
    "value": figures["mmu.host_fault_in_4k"]["value"] / figures["mmu.host_fault_in_2m"]["value"],
    "unit": "x"}
inv_all, inv_one = figures["mmu.host_invalidate_all_256m"], figures["mmu.host_invalidate_4k_of_256m"]
assert inv_all["unit"] == inv_one["unit"]
figures["mmu.host_invalidate_all_vs_4k"] = {"value": inv_all["value"] / inv_one["value"], "unit": "x"}

# Faults under unrelated churn against quiet, per rule, same run (goal:
# >= 0.5x with the range-exact rule; "_legacy" is the old rule's baseline).
for sfx in ("", "_legacy"):
    quiet = figures[f"mmu.host_fault_rate_quiet{sfx}"]
    for n in ("churn1", "churn4", "churn1_nice", "churn4_nice"):
        fig = figures[f"mmu.host_fault_rate_{n}{sfx}"]
        assert fig["unit"] == quiet["unit"] == "faults/s"
        figures[f"mmu.host_fault_rate_{n}_vs_quiet{sfx}"] = {
            "value": fig["value"] / quiet["value"], "unit": "x"}

# Figures the guest and bench_pfncache printed as
# "bench: <name> = <value> <unit>".
for path in line_paths:
    with open(path) as f:
        for line in f:
            m = re.match(r"bench: (\S+) = (\S+) (.+)$", line.strip())
            if m:
                figures[m.group(1)] = {"value": float(m.group(2)), "unit": m.group(3)}
# bench_pfncache's figures must all be there.
for n in ("churn1", "churn4", "churn1_nice", "churn4_nice"):
    for f in ("completions_ratio", "p99_vs_quiet", "refreshes_per_s", "refreshes_per_s_baseline",
              "p99_ns", "p99_ns_baseline"):
        if f"pfncache.{n}_{f}" not in figures:
            sys.exit(f"bench: bench_pfncache did not report pfncache.{n}_{f}")
for f in ("quiet_latency_ratio", "quiet_refresh_ns", "quiet_refresh_ns_baseline", "quiet_p99_ns"):
    if f"pfncache.{f}" not in figures:
        sys.exit(f"bench: bench_pfncache did not report pfncache.{f}")

for name, fig in figures.items():
    fig["value"] = round(fig["value"], 3)
    print(f"bench: {name} = {fig['value']:.2f} {fig['unit']}")
with open(out_path, "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
EOF
