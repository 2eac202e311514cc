#!/usr/bin/env bash
# Model-check the pfn cache protocol (pfncache/model/pfncache.pml) with spin
# (issue 11, "Proof"). Prints KTAP, one test line per property and variant;
# exits non-zero if any fails.
#   spin-check.sh [-j N]
#     -j N  run N spin searches at once (default: $JOBS, i.e. nproc)
# Work files and counterexample trails go to $KVMMU_BUILD/spin (replaced on
# every run). SPIN_MODEL=path checks another copy of the model (to see the
# script fail on a model that is wrong).
# Every search is exhaustive with fixed bounds (NA=3 overlapping
# invalidations, NG=2 memslot changes, unbounded unrelated invalidations),
# a fixed depth limit and a fixed memory limit, so the state counts printed
# are the same on every run; only the times vary. Expected-failure tests
# ("spin finds ...") pass when spin finds the counterexample and the replayed
# trail shows it.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

while [ $# -gt 0 ]; do
	case "$1" in
	-j) JOBS=$2; shift 2 ;;
	*) die "usage: spin-check.sh [-j N]" ;;
	esac
done

if ! command -v spin >/dev/null || ! command -v gcc >/dev/null; then
	ensure_pkgs spin gcc
fi

MODEL=${SPIN_MODEL:-$KVMMU_ROOT/pfncache/model/pfncache.pml}
[ -f "$MODEL" ] || die "no model at $MODEL"
OUT=$KVMMU_BUILD/spin
DEPTH=100000		# pan -m: the search fails (not ok) if it is too small
MEMLIM=4096		# MB: the search fails (not ok) if it needs more
TIMEOUT=110		# s: a safety net only; the searches take seconds
if ! rm -rf "$OUT" || ! mkdir -p "$OUT"; then die "cannot create $OUT"; fi

# The tests: name | expectation | spin -D flags | search kind
#   expectation: pass = no error, full coverage for safety searches;
#     assert-read / assert-publish = spin finds that assertion violated;
#     cycle = spin finds a non-progress cycle; cycle-quiet = the same, and the
#     cycle runs after every overlapping invalidation and memslot change is
#     over, with the unrelated stream running in it.
#   kind: safety (assertions, deadlocks) or progress (-DNP, pan -l -f).
TESTS=(
	"kvmmu_safety_reader_never_uses_old_page|pass|-DCHECK_READ|safety"
	"kvmmu_safety_no_mapping_valid_inside_window|pass|-DCHECK_PUBLISH|safety"
	"kvmmu_progress_under_unbounded_unrelated_invalidations|pass||progress"
	"kvmmu_progress_without_unrelated_wakeups|pass|-DNO_UNRELATED|progress"
	"baseline_safety_holds|pass|-DBASELINE -DCHECK_READ -DCHECK_PUBLISH|safety"
	"baseline_progress_violated_livelock_found|cycle-quiet|-DBASELINE|progress"
	"baseline_livelock_with_no_overlapping_invalidation_at_all|cycle|-DBASELINE -DNA=0 -DNG=0|progress"
	"broken_publish_without_flag_check_reader_uses_old_page|assert-read|-DBROKEN_NO_FLAG_CHECK -DCHECK_READ|safety"
	"broken_clear_flag_without_inflight_check_publishes_in_window|assert-publish|-DBROKEN_NO_INFLIGHT -DCHECK_PUBLISH|safety"
	"broken_wake_before_retiring_range_loses_wakeup|cycle|-DBROKEN_WAKE_EARLY -DNO_UNRELATED|progress"
)

# run_one I: run test I's search in $OUT/I-NAME; leaves pan.out, replay.out,
# and verdict (first line "ok" or "not ok", then '#' diagnostics).
run_one() {
	local i=$1 name expect dflags kind
	IFS='|' read -r name expect dflags kind <<<"${TESTS[$i]}"
	local d=$OUT/$((i + 1))-$name v
	mkdir -p "$d" && cp "$MODEL" "$d/pfncache.pml"
	v=$d/verdict
	(
		cd "$d" || exit 1
		local ccflags="-O2 -w -DMEMLIM=$MEMLIM" panflags="-m$DEPTH"
		if [ "$kind" = safety ]; then
			ccflags+=" -DSAFETY"
		else
			ccflags+=" -DNP -DNFAIR=3"
			panflags+=" -l -f"
		fi
		# shellcheck disable=SC2086
		echo "spin -a $dflags pfncache.pml && gcc $ccflags -o pan pan.c && ./pan $panflags" >cmd
		local t0 t1
		t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		if ! spin -a $dflags pfncache.pml >spin-a.out 2>&1; then
			printf 'not ok\n# spin -a failed: %s\n' "$(tail -1 spin-a.out)" >"$v"; exit 0
		fi
		# shellcheck disable=SC2086
		if ! gcc $ccflags -o pan pan.c >gcc.out 2>&1; then
			printf 'not ok\n# gcc failed: %s\n' "$(tail -1 gcc.out)" >"$v"; exit 0
		fi
		# shellcheck disable=SC2086
		timeout "$TIMEOUT" ./pan $panflags >pan.out 2>&1
		local rc=$?
		t1=$(date +%s.%N)
		local errors states visited depth secs
		errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | tail -1)
		states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | tail -1)
		visited=$(sed -n 's/.*states, stored (\([0-9.e+]*\) visited).*/\1/p' pan.out | tail -1)
		depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | tail -1)
		secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		local why=""
		[ $rc = 124 ] && why="timed out after ${TIMEOUT}s"
		[ -z "$why" ] && [ -z "$errors" ] && why="pan did not report (exit $rc)"
		grep -q 'max search depth too small' pan.out && why="depth limit $DEPTH too small: search incomplete"
		grep -qiE 'out of memory|MEMLIM' pan.out && why="memory limit ${MEMLIM}MB reached: search incomplete"
		# replay the counterexample, if any, with the same flags
		if [ -f pfncache.pml.trail ]; then
			# shellcheck disable=SC2086
			spin -t -p $dflags pfncache.pml >replay.out 2>&1
		fi
		if [ -z "$why" ]; then
			case "$expect" in
			pass)
				[ "$errors" = 0 ] || why="spin found an error: $(grep -m1 -E 'pan:1:|error' pan.out)"
				if [ -z "$why" ] && [ "$kind" = safety ]; then
					# coverage: every statement but the ends of endless loops ran
					local unreached
					unreached=$(sed -n '/^unreached in/,$p' pan.out | grep -E '^\s+pfncache\.pml:' | grep -v '"-end-"')
					[ -z "$unreached" ] || why="statements never reached (vacuous?): $(echo "$unreached" | head -3 | tr '\n' ' ')"
				fi ;;
			assert-read | assert-publish)
				local want='!(ok)||( !(win[r])&&(p==host[r]))'
				[ "$expect" = assert-publish ] && want='!(win[h])&&(pfn==host[h])'
				if [ "$errors" = 0 ]; then
					why="spin found no violation: the safety property cannot fail here"
				elif ! grep -qF "assertion violated ( $want)" pan.out; then
					why="spin found another error: $(grep -m1 -E 'pan:1:' pan.out)"
				elif ! grep -qF "assertion violated" replay.out 2>/dev/null; then
					why="the trail does not replay"
				fi ;;
			cycle | cycle-quiet)
				if [ "$errors" = 0 ]; then
					why="spin found no non-progress cycle"
				elif ! grep -q 'non-progress cycle' pan.out; then
					why="spin found another error: $(grep -m1 -E 'pan:1:' pan.out)"
				elif ! grep -q 'START OF CYCLE' replay.out 2>/dev/null; then
					why="the trail does not replay"
				elif [ "$expect" = cycle-quiet ]; then
					grep -qE '\(InvCache:1\).*<valid end state>' replay.out &&
						grep -qE '\(Memslot:1\).*<valid end state>' replay.out ||
						why="the cycle is not after the overlapping invalidations and memslot changes"
					sed -n '/START OF CYCLE/,$p' replay.out >cycle.out
					grep -q 'proc .*(InvUnrelated:1)' cycle.out ||
						why="the unrelated invalidations do not run in the cycle"
					grep -q 'proc .*(Refresher:1).*moved' cycle.out ||
						why="the refresher does not retry in the cycle"
				fi ;;
			esac
		fi
		{
			if [ -z "$why" ]; then echo ok; else echo "not ok"; echo "# $why"; fi
			local found=""
			[ "${errors:-0}" != 0 ] && found=", found: $(grep -m1 -E 'pan:1:' pan.out | sed 's/^pan:1: //')"
			echo "# $kind search, spin -D: ${dflags:-(none)}: ${states:-?} states stored${visited:+ ($visited visited)}, depth ${depth:-?}, errors ${errors:-?}, ${secs}s$found"
			[ -f pfncache.pml.trail ] && echo "# trail: ${d#"$KVMMU_ROOT"/}/pfncache.pml.trail, replayed in replay.out"
		} >"$v"
	)
	[ -s "$v" ] || printf 'not ok\n# the search did not report\n' >"$v"
}

t0=$(date +%s)
# start the long progress searches first, then fill the slots
order=(2 0 1 4 3 5 6 7 8 9)
for i in "${order[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	run_one "$i" &
done
wait

echo "KTAP version 1"
echo "# spin-check: $(spin -V 2>&1 | head -1); model ${MODEL#"$KVMMU_ROOT"/}; depth limit $DEPTH, memory limit ${MEMLIM}MB, $JOBS at once"
echo "1..${#TESTS[@]}"
pass=0 fail=0
for i in "${!TESTS[@]}"; do
	IFS='|' read -r name _ <<<"${TESTS[$i]}"
	v=$OUT/$((i + 1))-$name/verdict
	if [ "$(head -1 "$v")" = ok ]; then
		echo "ok $((i + 1)) - $name"; pass=$((pass + 1))
	else
		echo "not ok $((i + 1)) - $name"; fail=$((fail + 1))
	fi
	tail -n +2 "$v"
done
echo "# $pass passed, $fail failed ($(( $(date +%s) - t0 ))s)"
[ "$fail" = 0 ]
