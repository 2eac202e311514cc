# Shared helpers for kvmmu's scripts. Source it; it defines no side effects.
# shellcheck shell=bash
KVMMU_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVMMU_CACHE=${KVMMU_CACHE:-$HOME/.cache/kvmmu}
KVMMU_BUILD=${KVMMU_BUILD:-$KVMMU_ROOT/build}
JOBS=${JOBS:-$(nproc)}

log() { printf '[kvmmu] %s\n' "$*" >&2; }
die() { printf '[kvmmu] error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_pkgs PKG...: install whatever Debian packages are missing.
# apt-get update runs at most once per process tree (KVMMU_APT_UPDATED).
ensure_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ -z "${KVMMU_APT_UPDATED:-}" ]; then
		log "apt-get update"
		as_root apt-get update -q >/dev/null || die "apt-get update failed"
		export KVMMU_APT_UPDATED=1
	fi
	log "installing: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

# Per-architecture names. Sets KARCH (kbuild ARCH), DEB_ARCH, CROSS,
# GNU_TRIPLET, QEMU_PKG, QEMU_BIN.
arch_vars() {
	case "$1" in
	x86_64)
		KARCH=x86_64 DEB_ARCH=amd64 GNU_TRIPLET=x86_64-linux-gnu CROSS=
		QEMU_PKG=qemu-system-x86 QEMU_BIN=qemu-system-x86_64 ;;
	arm64)
		KARCH=arm64 DEB_ARCH=arm64 GNU_TRIPLET=aarch64-linux-gnu CROSS=aarch64-linux-gnu-
		QEMU_PKG=qemu-system-arm QEMU_BIN=qemu-system-aarch64 ;;
	ppc64le)
		KARCH=powerpc DEB_ARCH=ppc64el GNU_TRIPLET=powerpc64le-linux-gnu CROSS=powerpc64le-linux-gnu-
		QEMU_PKG=qemu-system-ppc QEMU_BIN=qemu-system-ppc64 ;;
	*) die "unknown architecture '$1' (x86_64, arm64, ppc64le)" ;;
	esac
	[ "$(dpkg --print-architecture)" = "$DEB_ARCH" ] && CROSS=
	return 0
}

# Compiler packages needed to build C and C++ for an architecture.
toolchain_pkgs() {
	arch_vars "$1"
	if [ -z "$CROSS" ]; then
		echo gcc-12 g++-12
	else
		echo "gcc-12-$GNU_TRIPLET g++-12-$GNU_TRIPLET"
	fi
}

content_hash() { cat "$@" | sha256sum | cut -c1-16; }
