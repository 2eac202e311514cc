# Source me. apt for another architecture's packages without touching the
# host's dpkg architecture: a private state directory per architecture,
# the host's package sources, APT::Architecture set per call.
# shellcheck shell=bash

foreign_apt() {
	local arch=$1
	shift
	local d=$KVMMU_CACHE/apt/$arch
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/prefs.d"
	touch "$d/status"
	[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$d/sources.list" || : >"$d/sources.list"
	cp /etc/apt/sources.list.d/* "$d/sources.list.d/" 2>/dev/null || true
	apt-get -q -o APT::Architecture="$arch" -o APT::Architectures="$arch" \
		-o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" \
		-o Dir::Cache="$d/cache" -o Dir::Etc::SourceList="$d/sources.list" \
		-o Dir::Etc::SourceParts="$d/sources.list.d" -o Dir::Etc::PreferencesParts="$d/prefs.d" \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

foreign_apt_cache() {
	local arch=$1
	shift
	local d=$KVMMU_CACHE/apt/$arch
	apt-cache -o APT::Architecture="$arch" -o APT::Architectures="$arch" \
		-o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" \
		-o Dir::Cache="$d/cache" -o Dir::Etc::SourceList="$d/sources.list" \
		-o Dir::Etc::SourceParts="$d/sources.list.d" "$@"
}

# Refresh the foreign lists at most once an hour (the scripts that need
# them run in separate processes). An index that
# fails to download (seen: a security-suite index failing its size check
# during a mirror sync) is tolerated as long as some index is usable; the
# callers then pick the newest complete package set among what is listed.
foreign_apt_update() {
	local arch=$1 stamp=$KVMMU_CACHE/apt/$1.updated
	mkdir -p "$KVMMU_CACHE/apt"
	[ -n "$(find "$stamp" -mmin -60 2>/dev/null)" ] && return 0
	if ! foreign_apt "$arch" update >"$KVMMU_CACHE/apt/$arch.update.log" 2>&1; then
		log "apt update for $arch was incomplete; using the indexes that did load"
	fi
	ls "$KVMMU_CACHE/apt/$arch/lists/"*Packages* >/dev/null 2>&1 ||
		die "no package index for $arch (see $KVMMU_CACHE/apt/$arch.update.log)"
	touch "$stamp"
}

# foreign_apt_download ARCH DIR PKG...: download .debs into DIR.
foreign_apt_download() {
	local arch=$1 dir=$2
	shift 2
	foreign_apt_update "$arch"
	mkdir -p "$dir"
	(cd "$dir" && foreign_apt "$arch" download "$@" >/dev/null) || die "download $* ($arch) failed"
}
