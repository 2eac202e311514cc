#!/usr/bin/env bash
# Build (or find in the cache) the KUnit/debug kernel for one architecture.
# usage: scripts/kunit-kernel.sh ARCH [kvm]  -> prints the kernel build directory
# The kernel comes from Debian's linux-source-6.1; the build is cached under
# $KVMMU_CACHE/kernels keyed by the source version, the config fragments and
# the recipe number below, so a change to any of them builds a new kernel.
# The "kvm" flavour (arm64) is the same debug kernel with KVM built in and
# the patch series kvm/ARCH/patches/*.patch applied to a private copy of
# the source (keyed by the patches too), so that kvmmu.ko can serve KVM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=${1:?usage: kunit-kernel.sh ARCH [kvm]}
flavour=${2:-debug}
arch_vars "$arch"

ensure_pkgs linux-source-6.1 make flex bison bc libelf-dev libssl-dev cpio patch \
	xz-utils kmod python3 perl $(toolchain_pkgs "$arch")

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
frags=("$KVMMU_ROOT/scripts/kconfig/common.config" "$KVMMU_ROOT/scripts/kconfig/$arch.config")
patches=()
case "$flavour" in
debug) ;;
kvm)
	[ -d "$KVMMU_ROOT/kvm/$arch/patches" ] || die "no KVM patch series for $arch"
	frags+=("$KVMMU_ROOT/kvm/$arch/kvm.config")
	patches=("$KVMMU_ROOT"/kvm/"$arch"/patches/*.patch) ;;
*) die "unknown kernel flavour '$flavour' (debug, kvm)" ;;
esac
# Bump when the build steps below change what ends up in the kernel.
recipe=1
key=$( { echo "$srcver $arch recipe=$recipe"; cat "${frags[@]}" ${patches[@]+"${patches[@]}"}; } |
	sha256sum | cut -c1-16)
pristine=$KVMMU_CACHE/src/linux-source-$srcver
src=$pristine
if [ ${#patches[@]} -gt 0 ]; then
	pkey=$(cat "${patches[@]}" | sha256sum | cut -c1-16)
	src=$KVMMU_CACHE/src/linux-source-$srcver-$flavour-$pkey
fi
out=$KVMMU_CACHE/kernels/$arch-$flavour-$key

if [ -f "$out/.kvmmu-done" ]; then
	echo "$out"
	exit 0
fi

if [ ! -f "$src/.kvmmu-done" ]; then
	log "extracting linux-source $srcver${patches[0]:+ for the $flavour patch series}"
	rm -rf "$src" && mkdir -p "$src"
	tar -xf /usr/src/linux-source-6.1.tar.xz -C "$src" --strip-components=1
	for p in ${patches[@]+"${patches[@]}"}; do
		patch -d "$src" -p1 --quiet --forward <"$p" ||
			{ rm -rf "$src"; die "patch $(basename "$p") does not apply"; }
	done
	touch "$src/.kvmmu-done"
fi

rm -rf "$out" && mkdir -p "$out"
# Cross compilers are installed by version only (no unversioned gcc).
mk=(make -C "$src" O="$out" ARCH="$KARCH" CC="${CROSS}gcc-12" HOSTCC=gcc-12
	CROSS_COMPILE="$CROSS" -j"$JOBS")
log "configuring $arch $flavour kernel ($out)"
"${mk[@]}" tinyconfig >/dev/null
(cd "$out" && KCONFIG_CONFIG=.config "$src/scripts/kconfig/merge_config.sh" \
	-m -O "$out" .config "${frags[@]}" >/dev/null)
"${mk[@]}" olddefconfig >/dev/null
bad=0
while IFS= read -r line; do
	case "$line" in ''|'#'*) continue ;; esac
	grep -qxF -- "$line" "$out/.config" || { log "config line lost: $line"; bad=1; }
done < <(cat "${frags[@]}")
[ $bad = 0 ] || die "config fragment did not survive olddefconfig"

log "building $arch $flavour kernel (this takes minutes; cached afterwards)"
start=$(date +%s)
"${mk[@]}" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; die "kernel build failed"; }
log "built in $(( $(date +%s) - start ))s"

case "$arch" in
x86_64) cp "$out/arch/x86/boot/bzImage" "$out/kvmmu-boot-image" ;;
arm64) cp "$out/arch/arm64/boot/Image" "$out/kvmmu-boot-image" ;;
ppc64le) cp "$out/vmlinux" "$out/kvmmu-boot-image" ;;
esac
# Out-of-tree modules need the config, headers, scripts, objtool and
# Module.symvers, not the kernel's objects.
find "$out" \( -name '*.o' -o -name '.*.cmd' -o -name '*.a' -o -name '.tmp_vmlinux*' \) -delete
rm -f "$out/vmlinux" "$out/build.log"
echo "KVMMU_SRC=$src" >"$out/kvmmu-src"
touch "$out/.kvmmu-done"
echo "$out"
