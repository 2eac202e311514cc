#!/usr/bin/env bash
# usage: check-kernel.sh ARCH LAYER [MODE]
#   LAYER stock: Debian's stock kernel and headers for ARCH
#   LAYER kunit: kvmmu's KUnit/debug kernel for ARCH (built and cached;
#                for arm64 the kvm kernel below, booted without EL2)
#   LAYER kvm:   arm64 only: the debug kernel with KVM, patched so that
#                kvmmu.ko serves KVM's stage 2 (kvm/arm64/patches), booted
#                with virtualization=on; runs upstream's KVM selftests
#                without and with kvmmu (scripts/initramfs/kvm-run)
#   MODE  check (default): KUnit suites if present, selftests, reload cycles
#         demo: the demo VMM only
#         bench: the fault-path benchmarks in the guest; prints their
#                "bench: ..." lines
# Builds kvmmu (W=1) for that kernel, boots it under QEMU and prints
# per-suite results and RESULT lines (see results.py).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 layer=$2 mode=${3:-check}
arch_vars "$arch"
ensure_pkgs make rsync cpio gzip python3 "$QEMU_PKG" $(toolchain_pkgs "$arch")

kunit_tree=
case "$layer" in
stock)
	vars=$("$KVMMU_ROOT/scripts/stock-kernel.sh" "$arch") || die "no stock kernel for $arch"
	eval "$vars"
	kdir=$KHEADERS image=$KIMAGE
	mk=()
	;;
kunit|kvm)
	# Where a KVM patch series exists (arm64), the kvm kernel is also the
	# KUnit/debug kernel: it is that kernel plus KVM, and KVM is idle
	# without EL2 (the kunit layer's QEMU has none). One kernel build, not
	# two, in a cold make check.
	flavour=debug
	[ "$layer" = kvm ] || [ -d "$KVMMU_ROOT/kvm/$arch/patches" ] && flavour=kvm
	kdir=$("$KVMMU_ROOT/scripts/kunit-kernel.sh" "$arch" "$flavour") ||
		die "no $flavour kernel for $arch"
	image=$kdir/kvmmu-boot-image
	kunit_tree=$(sed -n 's/^KVMMU_SRC=//p' "$kdir/kvmmu-src")
	mk=(CC="${CROSS}gcc-12")
	;;
*) die "unknown layer $layer" ;;
esac
[ -n "$CROSS" ] && mk+=(ARCH="$KARCH" CROSS_COMPILE="$CROSS")

work=$KVMMU_BUILD/$arch-$layer
rm -rf "$work/src" && mkdir -p "$work/src"
rsync -a --exclude=/build/ --exclude=/.git/ --exclude=/host/ --exclude=/generated/ \
	--exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' --exclude='*.mod*' \
	--exclude=Module.symvers --exclude=modules.order "$KVMMU_ROOT/" "$work/src/"

# The module build is a check of its own: it must be warning-free at W=1.
build_ok=1
if make -C "$kdir" M="$work/src" W=1 "${mk[@]}" -j"$JOBS" modules >"$work/build.log" 2>&1; then
	warnings=$(grep -E 'warning:|WARNING:' "$work/build.log" | grep -v 'Skipping BTF' || true)
	[ -z "$warnings" ] || build_ok=0
else
	build_ok=0
fi
if [ $build_ok = 1 ]; then
	printf '  [PASS] %-7s %-6s module build (W=1, warning-free)\n' "$arch" "$layer"
	echo "RESULT $layer $arch 1 0 0"
else
	printf '  [FAIL] %-7s %-6s module build (W=1, warning-free)\n' "$arch" "$layer"
	grep -E 'error|warning|WARNING' "$work/build.log" | head -20 | sed 's/^/           /'
	echo "RESULT $layer $arch 0 1 0"
	exit 0
fi

"$KVMMU_ROOT/scripts/build-selftests.sh" "$arch" "$work/selftests" || die "selftest build failed"
mkdir -p "$work/modules"
cp "$work/src"/*.ko "$work/modules/"
imode=$mode
upstream=
if [ "$layer" = kvm ]; then
	imode=kvm-$mode
	upstream=$work/kvm-upstream
	"$KVMMU_ROOT/scripts/build-kvm-selftests.sh" "$arch" "$upstream" ||
		die "upstream KVM selftest build failed"
	export KVMMU_QEMU_KVM=1
fi
"$KVMMU_ROOT/scripts/initramfs.sh" "$arch" "$imode" "$work/initrd.gz" "$work/modules" "$work/selftests" \
	$upstream
log "booting $arch $layer kernel ($mode)"
start=$(date +%s)
"$KVMMU_ROOT/scripts/qemu-run.sh" "$arch" "$image" "$work/initrd.gz" "$work/console.log" "${QEMU_TIMEOUT:-900}"
log "QEMU run took $(( $(date +%s) - start ))s; console log: $work/console.log"

if [ "$mode" = demo ]; then
	sed -n '/kvmmu-demo:/,/kvmmu-demo: done/p' "$work/console.log" | sed 's/^\[[ 0-9.]*\] //'
fi
if [ "$mode" = bench ]; then
	tr -d '\r' <"$work/console.log" | grep -E '^bench: ' || true
fi
nsuites=0
[ "$layer" = kunit ] && nsuites=$(grep -cE '^KT_SUITE(_MM)?\(' "$KVMMU_ROOT/kunit/suites.c")
[ "$layer" = kvm ] && [ "$mode" = check ] &&
	nsuites=$(grep -c "^kunit_test_suite" "$KVMMU_ROOT/kunit/kvm_arm64_test.c")
python3 "$KVMMU_ROOT/scripts/results.py" "$work/console.log" --arch "$arch" --layer "$layer" \
	${kunit_tree:+--kunit-tree "$kunit_tree"} --kunit-suites "$nsuites"
