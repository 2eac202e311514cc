#!/usr/bin/env bash
# Host micro-benchmarks of the C++ core (host/bench, Google Benchmark), built
# in Release in build/host/bench.
# usage: scripts/bench.sh
# Prints one line per figure on stdout:
#   bench: <component>.<name> = <value> <unit>
# and writes them to build/bench.json as
#   {"<component>.<name>": {"value": v, "unit": "u"}, ...}
# Google Benchmark's own JSON output is kept in build/bench-raw.json.
# Each figure is the median of 5 repetitions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dir=$KVMMU_BUILD/host/bench
raw=$KVMMU_BUILD/bench-raw.json
out=$KVMMU_BUILD/bench.json

ensure_pkgs cmake g++-12 libgtest-dev libbenchmark-dev python3

log "building benchmarks in $dir"
{ cmake -S "$KVMMU_ROOT/host" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKVMMU_BENCH=ON &&
	cmake --build "$dir" -j"$JOBS" --target bench_runtime; } >&2

log "running benchmarks"
"$dir/bench_runtime" --benchmark_format=json --benchmark_repetitions=5 \
	--benchmark_report_aggregates_only=true >"$raw"

python3 - "$raw" "$out" <<'EOF'
import json
import sys

raw_path, out_path = sys.argv[1:]
with open(raw_path) as f:
    raw = json.load(f)

figures = {}
for b in raw["benchmarks"]:
    if b.get("error_occurred"):
        sys.exit(f"bench: {b['run_name']} failed: {b.get('error_message')}")
    if b.get("aggregate_name") == "median":
        figures[b["run_name"]] = {"value": b["real_time"], "unit": b["time_unit"]}

# The cost of kvmmu's allocation path over the C library's, same run.
kmalloc = figures["runtime.kmalloc_free_64"]
malloc = figures["runtime.malloc_free_64"]
assert kmalloc["unit"] == malloc["unit"]
figures["runtime.kmalloc_vs_malloc_ratio"] = {
    "value": kmalloc["value"] / malloc["value"], "unit": "x"}

for name, fig in figures.items():
    fig["value"] = round(fig["value"], 3)
    print(f"bench: {name} = {fig['value']:.2f} {fig['unit']}")
with open(out_path, "w") as f:
    json.dump(figures, f, indent=2)
    f.write("\n")
EOF
