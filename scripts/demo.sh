#!/usr/bin/env bash
# The main job (make demo): boots Debian's stock kernel under QEMU, loads
# kvmmu and runs the demo VMM (selftests/kvmmu-demo.c), printing what kvmmu
# saw. Installs what it needs on first use.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=${DEMO_ARCH:-x86_64}
mkdir -p "$KVMMU_BUILD"
log "preparing the stock $arch kernel, kvmmu.ko and the demo VMM (first run installs packages)"
out=$("$KVMMU_ROOT/scripts/check-kernel.sh" "$arch" stock demo 2>"$KVMMU_BUILD/demo.log") ||
	{ tail -20 "$KVMMU_BUILD/demo.log"; die "demo failed"; }
printf '%s\n' "$out" | grep -vE '^RESULT|^\s+\[PASS\]'
if printf '%s\n' "$out" | grep -q '^\s*\[FAIL\]'; then
	die "the demo run failed its checks (console: $KVMMU_BUILD/$arch-stock/console.log)"
fi
log "kernel log clean; console log: $KVMMU_BUILD/$arch-stock/console.log"
