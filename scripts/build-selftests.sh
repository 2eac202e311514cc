#!/usr/bin/env bash
# usage: build-selftests.sh ARCH OUTDIR
# Builds every selftests/<component>/<name>_test.c and the demo VMM as
# static binaries for ARCH into OUTDIR/<component>/ and OUTDIR/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
arch=$1 out=$2
arch_vars "$arch"
cc=${CROSS}gcc-12
pkgs=(libc6-dev)
[ -n "$CROSS" ] && pkgs=("gcc-12-$GNU_TRIPLET" "libc6-dev-$DEB_ARCH-cross")
ensure_pkgs "${pkgs[@]}"
cflags=(-static -O2 -g -Wall -Wextra -Werror -I"$KVMMU_ROOT/include/uapi" -pthread)
mkdir -p "$out"
for src in "$KVMMU_ROOT"/selftests/*/*_test.c; do
	comp=$(basename "$(dirname "$src")")
	[ "$comp" = lib ] && continue
	mkdir -p "$out/$comp"
	"$cc" "${cflags[@]}" -o "$out/$comp/$(basename "$src" .c)" "$src"
done
"$cc" "${cflags[@]}" -o "$out/kvmmu-demo" "$KVMMU_ROOT/selftests/kvmmu-demo.c"
