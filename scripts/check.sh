#!/usr/bin/env bash
# The whole test suite (make check): host tests, the spin model check of the
# pfn cache protocol, then for each architecture the stock Debian kernel and
# kvmmu's KUnit/debug kernel under QEMU, and (arm64) the "kvm" layer: a KVM
# patched to run its guests on kvmmu's stage-2 tables, proven by upstream's
# KVM selftests.
#   check.sh [--arch ARCH]...   (default: every supported architecture)
# Prints every suite's result, a per-arch per-layer summary and, last, the
# line "N passed, N failed". Exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

arches=()
while [ $# -gt 0 ]; do
	case "$1" in
	--arch) arches+=("$2"); shift 2 ;;
	*) die "usage: check.sh [--arch ARCH]..." ;;
	esac
done
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 arm64 ppc64le)

out=$KVMMU_BUILD/check
rm -rf "$out" && mkdir -p "$out"
results=$out/results.txt
: >"$results"
t0=$(date +%s)

# step NAME LAYER ARCH CMD...: run a layer; its RESULT lines go to the
# summary. A step that dies without reporting counts as one failure.
step() {
	local name=$1 layer=$2 arch=$3
	shift 3
	local logf=$out/$name.log s=$(date +%s)
	echo "== $name"
	"$@" >"$logf" 2>&1
	local rc=$?
	grep -E '^\s+\[(PASS|FAIL)\]|^\s{11}' "$logf"
	if ! grep -q '^RESULT ' "$logf"; then
		echo "  [FAIL] $arch $layer step did not report (exit $rc); last lines of $logf:"
		tail -15 "$logf" | sed 's/^/           /'
		echo "RESULT $layer $arch 0 1 0" >>"$results"
	else
		grep '^RESULT ' "$logf" >>"$results"
		[ $rc = 0 ] || { echo "  [FAIL] $arch $layer step exited $rc"; echo "RESULT $layer $arch 0 1 0" >>"$results"; }
	fi
	echo "   ($(( $(date +%s) - s ))s)"
}

# The model layer: spin's searches of the pfn cache protocol
# (scripts/spin-check.sh, pfncache/model). Its KTAP goes to the log, and
# from it one line per search and "RESULT model any <passed> <failed> 0":
# a test missing from the KTAP, or an exit status of spin-check.sh that its
# test lines do not explain, is a failure. Without a KTAP plan it reports
# nothing (the step then counts one failure and shows the log's tail).
model_check() {
	local ktap=$out/model.ktap rc=0
	bash "$KVMMU_ROOT/scripts/spin-check.sh" >"$ktap" || rc=$?
	cat "$ktap"
	grep -qE '^1\.\.[0-9]+$' "$ktap" || return 1
	awk -v rc="$rc" '
	function flush() {
		if (name == "")
			return
		if (ok) {
			# "# <kind> search, spin -D: <flags>: <n> states stored ..., <t>s[, found: ...]"
			d = diag[1]
			kind = d; sub(/^# /, "", kind); sub(/,.*/, "", kind)
			states = d; sub(/ states stored.*/, "", states); sub(/.*: /, "", states)
			secs = d; sub(/, found: .*/, "", secs); sub(/.*, /, "", secs)
			printf "  [PASS] %-7s %-6s %s (%s, %s states, %s%s)\n", "any", "model", name,
				kind, states, secs, d ~ /, found: / ? ", counterexample found as expected" : ""
		} else {
			printf "  [FAIL] %-7s %-6s %s\n", "any", "model", name
			for (i = 1; i <= nd; i++)
				printf "           %s\n", substr(diag[i], 3)
		}
		name = ""
	}
	/^1\.\.[0-9]+$/ { plan = substr($0, 4) + 0; next }
	/^(not )?ok [0-9]+ - / {
		flush()
		ok = $1 == "ok"; name = $0; sub(/^(not )?ok [0-9]+ - /, "", name)
		seen++; p += ok; f += !ok; nd = 0
		next
	}
	/^# [0-9]+ passed, [0-9]+ failed/ { next }
	/^# / && name != "" { diag[++nd] = $0; next }
	END {
		flush()
		if (seen < plan) {
			printf "  [FAIL] %-7s %-6s %d of %d searches did not report\n", "any", "model", plan - seen, plan
			f += plan - seen
		}
		if (rc != 0 && f == 0) {
			printf "  [FAIL] %-7s %-6s spin-check.sh exited %d\n", "any", "model", rc
			f++
		}
		printf "RESULT model any %d %d 0\n", p, f
	}' "$ktap"
}

step host host all bash "$KVMMU_ROOT/scripts/host.sh"
step model model any model_check
for a in "${arches[@]}"; do
	step "$a-stock" stock "$a" bash "$KVMMU_ROOT/scripts/check-kernel.sh" "$a" stock
	step "$a-kunit" kunit "$a" bash "$KVMMU_ROOT/scripts/check-kernel.sh" "$a" kunit
	# A real KVM on kvmmu's tables (arm64: kvm/arm64/patches, docs/kvm.md).
	[ -d "$KVMMU_ROOT/kvm/$a/patches" ] &&
		step "$a-kvm" kvm "$a" bash "$KVMMU_ROOT/scripts/check-kernel.sh" "$a" kvm
done

echo
echo "== summary (arch, layer: passed failed skipped)"
awk '$1 == "RESULT" {
	# host lines are per configuration: RESULT host <config> ...
	key = ($2 == "host") ? sprintf("%-8s %-12s", "host", $3) : sprintf("%-8s %-12s", $3, $2)
	p[key] += $4; f[key] += $5; s[key] += $6; order[key] = ++n
	P += $4; F += $5; S += $6
}
END {
	for (k in p) printf "  %s %6d %6d %6d\n", k, p[k], f[k], s[k] | "sort"
	close("sort")
	printf "  total (%ds), %d skipped\n", '"$(( $(date +%s) - t0 ))"', S
	printf "%d passed, %d failed\n", P, F
	printf "%d passed, %d failed\n", P, F > "'"$out/summary.txt"'"
	exit (F > 0)
}' "$results"
