#!/usr/bin/env bash
# usage: stock-kernel.sh ARCH
# Finds Debian's current stock kernel for ARCH, makes its headers and image
# available (cached under $KVMMU_CACHE/stock) and prints shell assignments:
#   KVER=<release> KHEADERS=<headers build dir> KIMAGE=<bootable image>
# The ABI number is resolved from the package lists at run time; if the
# newest one is not complete in the archive (image and headers), the newest
# complete one is used.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$KVMMU_ROOT/scripts/foreign-apt.sh"
arch=$1
arch_vars "$arch"
case "$arch" in
x86_64) flavour=amd64 ;;
arm64) flavour=arm64 ;;
ppc64le) flavour=powerpc64le ;;
esac

if [ -z "$CROSS" ]; then
	ensure_pkgs apt
	[ -n "${KVMMU_APT_UPDATED:-}" ] || { as_root apt-get update -q >/dev/null; export KVMMU_APT_UPDATED=1; }
	acache() { apt-cache "$@"; }
else
	foreign_apt_update "$DEB_ARCH"
	acache() { foreign_apt_cache "$DEB_ARCH" "$@"; }
fi

want=$(acache depends "linux-image-$flavour" 2>/dev/null |
	sed -n "s/.*Depends: linux-image-\([0-9.]*-[0-9]*\)-$flavour\$/\1/p" | head -1)
abis=$(acache pkgnames "linux-headers-" | sed -n "s/^linux-headers-\([0-9.]*-[0-9]*\)-$flavour\$/\1/p" | sort -V -r)
abi=
for a in $want $abis; do
	if acache show "linux-image-$a-$flavour" >/dev/null 2>&1 &&
	   acache show "linux-headers-$a-$flavour" >/dev/null 2>&1; then
		abi=$a
		break
	fi
done
[ -n "$abi" ] || die "no complete stock kernel found for $arch"
[ "$abi" = "$want" ] || log "linux-image-$flavour wants $want; using $abi"
kver=$abi-$flavour
dir=$KVMMU_CACHE/stock/$arch/$kver

if [ ! -f "$dir/.kvmmu-done" ]; then
	rm -rf "$dir" && mkdir -p "$dir/debs"
	log "fetching stock kernel $kver ($arch)"
	if [ -z "$CROSS" ]; then
		(cd "$dir/debs" && apt-get download -q "linux-image-$kver" >/dev/null 2>&1) ||
			die "download linux-image-$kver failed"
	else
		foreign_apt_download "$DEB_ARCH" "$dir/debs" "linux-image-$kver"
	fi
	dpkg-deb -x "$dir"/debs/linux-image-*.deb "$dir/image"
	rm -rf "$dir/debs"
	touch "$dir/.kvmmu-done"
fi

if [ -z "$CROSS" ]; then
	ensure_pkgs "linux-headers-$kver"
	headers=/usr/src/linux-headers-$kver
else
	headers=$("$KVMMU_ROOT/scripts/cross-headers.sh" "$arch" "$abi" "$flavour")
fi

case "$arch" in
ppc64le) image=$dir/image/boot/vmlinux-$kver ;;
*) image=$dir/image/boot/vmlinuz-$kver ;;
esac
[ -f "$image" ] || die "no kernel image at $image"
echo "KVER=$kver KHEADERS=$headers KIMAGE=$image"
