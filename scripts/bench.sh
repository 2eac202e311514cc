#!/usr/bin/env bash
# Host micro-benchmarks of the C++ core (host/bench, Google Benchmark), built
# in Release in build/host/bench.
# usage: scripts/bench.sh
# Prints one line per figure on stdout:
#   bench: <component>.<name> = <value> <unit>
# and writes them to build/bench.json as
#   {"<component>.<name>": {"value": v, "unit": "u"}, ...}
# Google Benchmark's own JSON output is kept in build/bench-raw.json
# (bench_runtime) and build/bench-raw-pgtable.json (bench_pgtable).
# Each figure is the median of 5 repetitions: a benchmark's real time, or
# for pgtable.* its one user counter (ns_per_page, bytes_per_page,
# bytes_per_block), whose name gives the unit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=$KVMMU_BUILD/host/bench
raw=$KVMMU_BUILD/bench-raw.json
raw_pgtable=$KVMMU_BUILD/bench-raw-pgtable.json
out=$KVMMU_BUILD/bench.json

ensure_pkgs cmake g++-12 libgtest-dev libbenchmark-dev python3

log "building benchmarks in $dir"
{ cmake -S "$KVMMU_ROOT/host" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKVMMU_BENCH=ON &&
	cmake --build "$dir" -j"$JOBS" --target bench_runtime bench_pgtable; } >&2

log "running benchmarks"
"$dir/bench_runtime" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw"
"$dir/bench_pgtable" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw_pgtable"

python3 - "$out" "$raw" "$raw_pgtable" <<'EOF'
import json
import sys

out_path, raw_paths = sys.argv[1], sys.argv[2:]
# User counters that are a benchmark's figure, and their units.
counter_units = {"ns_per_page": "ns/page", "bytes_per_page": "B/page",
                 "bytes_per_block": "B/block"}

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

for name, fig in figures.items():
    fig["value"] = round(fig["value"], 3)
    print(f"bench: {name} = {fig['value']:.2f} {fig['unit']}")
with open(out_path, "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
EOF
