#!/usr/bin/env bash
# usage: cross-headers.sh ARCH ABI FLAVOUR -> headers build directory
# Debian's kernel headers for a foreign architecture, usable for cross
# builds without changing the host's dpkg architecture: the target's
# linux-headers-ABI-FLAVOUR and -common are unpacked (not installed) next to
# the HOST architecture's linux-kbuild-6.1 of the same version (its scripts
# and tools must run here), and the flavour Makefile's absolute include of
# the -common tree is pointed at the private copy. Cached by ABI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$KVMMU_ROOT/scripts/foreign-apt.sh"
arch=$1 abi=$2 flavour=$3
arch_vars "$arch"
dir=$KVMMU_CACHE/stock/$arch/headers-$abi-$flavour
hdr=$dir/root/usr/src/linux-headers-$abi-$flavour
if [ ! -f "$dir/.kvmmu-done" ]; then
	rm -rf "$dir" && mkdir -p "$dir/debs"
	log "fetching $arch headers $abi-$flavour"
	foreign_apt_download "$DEB_ARCH" "$dir/debs" "linux-headers-$abi-$flavour" "linux-headers-$abi-common"
	ver=$(dpkg-deb -f "$dir"/debs/linux-headers-"$abi-$flavour"_*.deb Version)
	(cd "$dir/debs" && apt-get download -q "linux-kbuild-6.1=$ver" >/dev/null 2>&1) ||
		die "host linux-kbuild-6.1=$ver is not available"
	for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
	sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" "$hdr/Makefile"
	rm -rf "$dir/debs"
	touch "$dir/.kvmmu-done"
fi
echo "$hdr"
