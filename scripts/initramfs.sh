#!/usr/bin/env bash
# usage: initramfs.sh ARCH MODE OUT.cpio.gz MODULE_DIR SELFTEST_DIR
# A busybox initramfs holding kvmmu's modules, selftests and /init.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 mode=$2 out=$3 moddir=$4 stdir=$5
arch_vars "$arch"
busybox=$("$KVMMU_ROOT/scripts/busybox.sh" "$arch") || die "no busybox for $arch"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,kvmmu/selftests}
chmod 755 "$root"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
cp "$KVMMU_ROOT/scripts/initramfs/init" "$root/init"
chmod +x "$root/init" "$root/bin/busybox"
echo "$mode" >"$root/kvmmu/mode"
# Development runs: KVMMU_ONLY=pattern runs only the KUnit suites and
# selftests whose name contains it (make check never sets it).
printf '%s\n' "${KVMMU_ONLY:-}" >"$root/kvmmu/only"
cp "$moddir"/kvmmu.ko "$root/kvmmu/"
[ -f "$moddir/kvmmu_kunit.ko" ] && cp "$moddir/kvmmu_kunit.ko" "$root/kvmmu/"
[ -f "$moddir/kvmmu_testdev.ko" ] && cp "$moddir/kvmmu_testdev.ko" "$root/kvmmu/"
cp -r "$stdir"/. "$root/kvmmu/selftests/"
mv "$root/kvmmu/selftests/kvmmu-demo" "$root/kvmmu/"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
