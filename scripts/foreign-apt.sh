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
		-o Debug::NoLocking=1 "$@"
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

# Refresh the foreign lists at most once per process tree.
foreign_apt_update() {
	local arch=$1 var=KVMMU_FOREIGN_UPDATED_${1//-/_}
	[ -n "${!var:-}" ] && return 0
	foreign_apt "$arch" update >/dev/null || die "apt update for $arch failed"
	export "$var"=1
}

# foreign_apt_download ARCH DIR PKG...: download .debs into DIR.
foreign_apt_download() {
	local arch=$1 dir=$2
	shift 2
	foreign_apt_update "$arch"
	mkdir -p "$dir"
	(cd "$dir" && foreign_apt "$arch" download "$@" >/dev/null) || die "download $* ($arch) failed"
}
