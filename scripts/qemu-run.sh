#!/usr/bin/env bash
# usage: qemu-run.sh ARCH KERNEL INITRD LOG [TIMEOUT_S]
# Boots KERNEL with INITRD under TCG (-m 1G, 2 CPUs, QEMU's edu and
# ivshmem-plain devices), console into LOG.
# The initramfs reboots when done; -no-reboot turns that into an exit. A
# WARN, oops or panic also ends the run (panic_on_warn, oops=panic, panic=-1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 kernel=$2 initrd=$3 logf=$4 tmo=${5:-900}
arch_vars "$arch"
ensure_pkgs "$QEMU_PKG"
append="panic=-1 oops=panic panic_on_warn=1 loglevel=4 nokaslr"
case "$arch" in
x86_64)
	cmd=(qemu-system-x86_64 -machine pc -cpu max -smp 2 -m 1G
	     -append "console=ttyS0 $append") ;;
arm64)
	# KVMMU_QEMU_KVM=1 (the "kvm" layer): EL2 for a real KVM in the
	# guest, a GICv3 (KVM's vGIC needs no GICv2 CPU-interface mapping),
	# and room for dirty_log_test's 1G of guest memory.
	if [ "${KVMMU_QEMU_KVM:-}" = 1 ]; then
		cmd=(qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3
		     -cpu max,pauth-impdef=on -smp 2 -m 2G)
	else
		cmd=(qemu-system-aarch64 -machine virt -cpu max,pauth-impdef=on -smp 2 -m 1G)
	fi
	cmd+=(-append "console=ttyAMA0 $append") ;;
ppc64le)
	cmd=(qemu-system-ppc64 -machine pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off
	     -cpu POWER9 -smp 2 -m 1G -vga none -append "console=hvc0 $append") ;;
esac
# Two real PCI devices for the passthrough tests: edu (MMIO registers) and
# ivshmem-plain (a RAM-like BAR2 backed by 4 MiB of host memory, naturally
# aligned, so a 2 MiB-aligned mapping of it can use block leaves).
cmd+=(-nographic -no-reboot -kernel "$kernel" -initrd "$initrd" -device edu
      -object memory-backend-ram,id=kvmmu-shm,size=4M -device ivshmem-plain,memdev=kvmmu-shm)
rc=0
timeout --foreground -k 10 "$tmo" "${cmd[@]}" </dev/null >"$logf" 2>&1 || rc=$?
tr -d '\r' <"$logf" >"$logf.tmp" && mv "$logf.tmp" "$logf"
[ $rc = 124 ] && echo "KVMMU-TIMEOUT after ${tmo}s" >>"$logf"
exit 0
