#!/usr/bin/env bash
# usage: busybox.sh ARCH -> path of a static busybox for ARCH
# The host's own comes from busybox-static; other architectures' package is
# downloaded and unpacked (not installed) into the cache.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch_vars "$1"
if [ -z "$CROSS" ]; then
	ensure_pkgs busybox-static
	echo /bin/busybox
	exit 0
fi
dir=$KVMMU_CACHE/busybox/$DEB_ARCH
if [ ! -x "$dir/bin/busybox" ]; then
	. "$KVMMU_ROOT/scripts/foreign-apt.sh"
	foreign_apt_download "$DEB_ARCH" "$dir/deb" busybox-static
	dpkg-deb -x "$dir"/deb/busybox-static_*.deb "$dir"
fi
echo "$dir/bin/busybox"
