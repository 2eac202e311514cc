#!/usr/bin/env bash
# usage: initramfs.sh ARCH MODE OUT.cpio.gz MODULE_DIR SELFTEST_DIR [KVM_SELFTEST_DIR]
# A busybox initramfs holding kvmmu's modules, selftests and /init; with
# KVM_SELFTEST_DIR, upstream's KVM selftests too (/kvmmu/kvm-upstream) and
# their runner (/kvmmu/kvm-run).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 mode=$2 out=$3 moddir=$4 stdir=$5 kvmdir=${6:-}
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
if [ -n "$kvmdir" ]; then
	mkdir -p "$root/kvmmu/kvm-upstream"
	cp -r "$kvmdir"/. "$root/kvmmu/kvm-upstream/"
	cp "$KVMMU_ROOT/scripts/initramfs/kvm-run" "$root/kvmmu/kvm-run"
	chmod +x "$root/kvmmu/kvm-run"
	[ -f "$moddir/kvmmu_kvm_kunit.ko" ] && cp "$moddir/kvmmu_kvm_kunit.ko" "$root/kvmmu/"
fi
mv "$root/kvmmu/selftests/kvmmu-demo" "$root/kvmmu/"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
