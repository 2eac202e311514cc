#!/usr/bin/env bash
# The main job (make demo): boots Debian's stock kernel under QEMU, loads
# kvmmu and runs the demo VMM (selftests/kvmmu-demo.c), printing what kvmmu
# saw. Installs what it needs on first use.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# DEMO_LAYER=kvm (make demo-kvm): arm64's patched KVM instead, whose vCPU
# faults its guest memory in through kvmmu's stage 2 (docs/kvm.md).
arch=${DEMO_ARCH:-x86_64}
layer=${DEMO_LAYER:-stock}
[ "$layer" = kvm ] && arch=arm64
mkdir -p "$KVMMU_BUILD"
log "preparing the $layer $arch kernel, kvmmu.ko and the demo (first run installs packages)"
out=$("$KVMMU_ROOT/scripts/check-kernel.sh" "$arch" "$layer" demo 2>"$KVMMU_BUILD/demo.log") ||
	{ tail -20 "$KVMMU_BUILD/demo.log"; die "demo failed"; }
printf '%s\n' "$out" | grep -vE '^RESULT|^\s+\[PASS\]'
if printf '%s\n' "$out" | grep -q '^\s*\[FAIL\]'; then
	die "the demo run failed its checks (console: $KVMMU_BUILD/$arch-$layer/console.log)"
fi
log "kernel log clean; console log: $KVMMU_BUILD/$arch-$layer/console.log"
