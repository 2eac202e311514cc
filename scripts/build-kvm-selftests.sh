#!/usr/bin/env bash
# usage: build-kvm-selftests.sh ARCH OUTDIR
# Builds the upstream KVM selftests that exercise the MMU (faults, memslot
# changes, dirty logging) from Debian's linux-source-6.1 as static programs
# for ARCH (arm64 only for now) into OUTDIR.
#
# The shared extracted source ($KVMMU_CACHE/src/linux-source-<version>) is
# only read: the UAPI headers are installed with O= into a private
# directory, and tools/ (plus the two files outside it that the selftests'
# Makefile and lib/rbtree.c reach for) is copied to a private tree, where
# kvm/ARCH/selftests/*.patch are applied. The programs are cached under
# $KVMMU_CACHE/kvm-selftests/ARCH-<key>, the key hashing the source
# version, the patches and this script; later runs only copy them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=${1:?usage: build-kvm-selftests.sh ARCH OUTDIR}
outdir=${2:?usage: build-kvm-selftests.sh ARCH OUTDIR}
arch_vars "$arch"
[ "$arch" = arm64 ] || die "build-kvm-selftests.sh: only arm64 is supported"

tests=(set_memory_region_test demand_paging_test kvm_page_table_test
	memslot_modification_stress_test memslot_perf_test dirty_log_test)

cc=${CROSS}gcc-12
pkgs=(linux-source-6.1 xz-utils make patch gcc-12)
if [ -n "$CROSS" ]; then
	pkgs+=("gcc-12-$GNU_TRIPLET" "binutils-$GNU_TRIPLET" "libc6-dev-$DEB_ARCH-cross")
else
	pkgs+=(libc6-dev)
fi
ensure_pkgs "${pkgs[@]}"

srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
patches=()
for p in "$KVMMU_ROOT/kvm/$arch/selftests"/*.patch; do
	[ -e "$p" ] && patches+=("$p")
done
self=$KVMMU_ROOT/scripts/build-kvm-selftests.sh
key=$( { echo "$srcver $arch ${tests[*]}"; cat "$self" "${patches[@]}"; } | sha256sum | cut -c1-16)
src=$KVMMU_CACHE/src/linux-source-$srcver
cache=$KVMMU_CACHE/kvm-selftests/$arch-$key

install_out() {
	mkdir -p "$outdir"
	local t
	for t in "${tests[@]}"; do cp "$cache/$t" "$outdir/$t"; done
}

if [ -f "$cache/.kvmmu-done" ]; then
	install_out
	exit 0
fi

if [ ! -f "$src/.kvmmu-done" ]; then
	log "extracting linux-source $srcver"
	rm -rf "$src" && mkdir -p "$src"
	tar -xf /usr/src/linux-source-6.1.tar.xz -C "$src" --strip-components=1
	touch "$src/.kvmmu-done"
fi

mkdir -p "$KVMMU_CACHE/kvm-selftests"
work=$(mktemp -d "$KVMMU_CACHE/kvm-selftests/.build-$arch-XXXXXX")
trap 'rm -rf "$work"' EXIT
stamp=$work/stamp
touch "$stamp"

log "building KVM selftests for $arch from linux-source $srcver"
tree=$work/tree
mkdir -p "$tree/scripts" "$tree/lib"
cp -a "$src/tools" "$tree/"
cp -a "$src/scripts/subarch.include" "$tree/scripts/"
cp -a "$src/lib/rbtree.c" "$tree/lib/"
for p in "${patches[@]}"; do
	patch -s -p1 -d "$tree" <"$p" || die "patch $(basename "$p") does not apply"
done

blog=$work/build.log
make -s -C "$src" O="$work/hdr" ARCH="$KARCH" HOSTCC=gcc-12 \
	headers_install >"$blog" 2>&1 || { tail -30 "$blog" >&2; die "headers_install failed"; }

obj=$work/out
mkdir -p "$obj"
# The prefix maps keep the private directory's name out of the programs.
make -C "$tree/tools/testing/selftests/kvm" -j"$JOBS" ARCH="$KARCH" \
	CC="$cc" AR="${CROSS}ar" LD="${CROSS}ld" CROSS_COMPILE="$CROSS" \
	KHDR_INCLUDES="-isystem $work/hdr/usr/include" OUTPUT="$obj" \
	EXTRA_CFLAGS="-ffile-prefix-map=$tree/= -ffile-prefix-map=$work/=" \
	LDFLAGS=-static "${tests[@]/#/$obj/}" >>"$blog" 2>&1 ||
	{ tail -30 "$blog" >&2; die "KVM selftests build failed"; }

written=$(find "$src" -newer "$stamp" -print -quit)
[ -z "$written" ] || die "the build wrote into the shared source tree: $written"

rm -rf "$cache" "$cache.tmp" && mkdir -p "$cache.tmp"
for t in "${tests[@]}"; do cp "$obj/$t" "$cache.tmp/$t"; done
touch "$cache.tmp/.kvmmu-done"
mv "$cache.tmp" "$cache"
install_out
