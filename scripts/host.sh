#!/usr/bin/env bash
# Host (userspace) tests: build the C++ core against host/platform.cpp and
# run its GoogleTest suite under ctest, once per configuration:
#   default  -O2 -g
#   asan     ASan + UBSan, every error fatal (-O1 -g1)
#   tsan     TSan (-O1 -g1); death tests (fork in the test process) are left out
# usage: scripts/host.sh [default|asan|tsan]...   (no argument: all three)
# Builds go to build/host/<config>. Build and test output goes to stderr;
# stdout gets one line per configuration:
#   RESULT host <config> <passed> <failed>
# Exits non-zero if a build or a test failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Sets cmake_args and ctest_args for configuration $1.
config_args() {
	case "$1" in
	default) cmake_args=() ctest_args=() ;;
	asan) cmake_args=(-DKVMMU_SANITIZE=address) ctest_args=() ;;
	tsan) cmake_args=(-DKVMMU_SANITIZE=thread) ctest_args=(-E 'DeathTest\.') ;;
	*) die "unknown host configuration '$1' (default, asan, tsan)" ;;
	esac
}

# From a ctest JUnit file: one result line per test executable (suite) on
# stdout, then "<passed> <failed>" as the last line.
junit_counts() {
	python3 - "$1" "$2" <<'EOF'
import collections
import sys
import xml.etree.ElementTree as ET

suites = collections.OrderedDict()
for c in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = c.get("name", "")
    s = suites.setdefault(name.split(".", 1)[0], [0, 0, []])
    status = c.get("status")
    if status == "fail":
        s[1] += 1
        s[2].append(name)
    elif status == "run":
        s[0] += 1
for name, (p, f, bad) in suites.items():
    print(f"  [{'FAIL' if f else 'PASS'}] host    {sys.argv[2]:7} {name} ({p} passed, {f} failed)")
    for b in bad:
        print(f"           not ok: {b}")
print(sum(s[0] for s in suites.values()), sum(s[1] for s in suites.values()))
EOF
}

# Builds and tests one configuration, prints its RESULT line; fails if a
# build or a test failed.
run_config() {
	local config=$1 dir=$KVMMU_BUILD/host/$1 junit rc=0 counts
	config_args "$config"
	junit=$dir/ctest-junit.xml

	log "host $config: building in $dir"
	if ! { cmake -S "$KVMMU_ROOT/host" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		"${cmake_args[@]}" && cmake --build "$dir" -j"$JOBS"; } >&2; then
		log "host $config: build failed"
		echo "  [FAIL] host    $config build"
		echo "RESULT host $config 0 1"
		return 1
	fi

	log "host $config: testing"
	rm -f "$junit"
	ctest --test-dir "$dir" --output-on-failure -j"$JOBS" --no-tests=error \
		--output-junit "$junit" "${ctest_args[@]}" >&2 || rc=$?
	if [ ! -f "$junit" ]; then
		echo "  [FAIL] host    $config ctest wrote no results"
		log "host $config: ctest wrote no results"
		echo "RESULT host $config 0 1"
		return 1
	fi
	counts=$(junit_counts "$junit" "$config")
	printf '%s\n' "$counts" | sed '$d'
	counts=$(printf '%s\n' "$counts" | tail -n 1)
	echo "RESULT host $config $counts"
	[ "$rc" = 0 ] && [ "${counts#* }" = 0 ]
}

configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(default asan tsan)
for c in "${configs[@]}"; do
	config_args "$c"
done

ensure_pkgs cmake g++-12 libgtest-dev python3

status=0
for c in "${configs[@]}"; do
	run_config "$c" || status=1
done
exit $status
