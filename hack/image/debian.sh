# iptables user space from Debian packages for an image's stage directory, fetched with
# apt-get download through a private apt state under _output/image/apt (the host's
# sources; the host's dpkg and apt configuration are untouched). Shared by hack/image.sh
# (make image) and hack/cluster/images.sh (upstream's kube-proxy image); source it after
# hack/lib.sh, with PLATFORMS set ("linux/amd64 linux/arm64").
#
# Versions: a package listed in DEBIAN_PINS (hack/image/debian-packages.txt) is downloaded
# at exactly that version, and the download fails when the host's candidate (the version
# apt would take) differs or the pinned one is not offered. With REQUIRE_PINS=1 (make
# image) an unlisted package fails too; without it (the test cluster's and conformance's
# extra packages) an unlisted package is taken at the host's candidate.
APT_DIR="$OUT/image/apt"
DEB_DIR="$OUT/image/debs"
DEBIAN_PINS=${DEBIAN_PINS:-$ROOT/hack/image/debian-packages.txt}
# iptables and everything its binaries and extensions link against (the builder checks
# DT_NEEDED and fails naming any library missing from this list), netbase for /etc/protocols.
PACKAGES="iptables libip4tc2 libip6tc2 libxtables12 libmnl0 libnftnl11 libnetfilter-conntrack3 libnfnetlink0 libc6"

need_debian_tools() {
	command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null ||
		{ echo "image: needs Debian's apt-get and dpkg-deb" >&2; return 1; }
}

apt_opts() {
	local arches=() p
	for p in $PLATFORMS; do arches+=(-o "APT::Architectures::=${p#*/}"); done
	# The package caches are kept (Debian's container images turn them off in apt.conf.d): each
	# apt call then maps them instead of parsing every list again (about 2 s of CPU a call).
	echo -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" \
		-o Dir::Cache::pkgcache=pkgcache.bin -o Dir::Cache::srcpkgcache=srcpkgcache.bin \
		-o "Dir::State::status=$APT_DIR/status" -o APT::Architecture=amd64 "${arches[@]}" \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root
}

# refresh_lists runs apt-get update into the private state when its lists are missing or old.
refresh_lists() {
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	touch "$APT_DIR/status"
	local stamp="$APT_DIR/lists/.updated-$(echo "$PLATFORMS" | tr ' /' '__')"
	if [ -f "$stamp" ] && [ -z "$(find "$stamp" -mmin +"${IMAGE_APT_MAX_AGE:-1440}")" ]; then
		return
	fi
	step "image: apt-get update (private lists for: $PLATFORMS)"
	# shellcheck disable=SC2046
	apt-get $(apt_opts) -qq update
	touch "$stamp"
}

# fetch_debs downloads the packages of one architecture (apt-get download skips files it has).
fetch_debs() {
	local arch=$1 dir="$DEB_DIR/$1" p spec specs=() offered want=()
	mkdir -p "$dir"
	for p in $PACKAGES netbase; do specs+=("$(apt_spec "$p" "$arch")"); done
	offered=$(offered_versions "${specs[@]}")
	for p in $PACKAGES netbase; do
		spec=$(download_spec "$p" "$arch" "$offered") || return 1
		want+=("$spec")
	done
	# shellcheck disable=SC2046
	(cd "$dir" && apt-get $(apt_opts) -qq download "${want[@]}")
}

# apt_spec NAME ARCH is apt's name for the package: name:arch, or name for netbase
# (Architecture: all).
apt_spec() {
	if [ "$1" = netbase ]; then echo "$1"; else echo "$1:$2"; fi
}

# pinned_version NAME ARCH prints NAME's pin for ARCH from DEBIAN_PINS ("NAME:ARCH=" before
# "NAME="); nothing when it is not pinned.
pinned_version() {
	awk -F= -v own="$1:$2" -v any="$1" '
		/^[[:space:]]*(#|$)/ { next }
		$1 == own { print $2; found = 1; exit }
		$1 == any && general == "" { general = $2 }
		END { if (!found && general != "") print general }' "$DEBIAN_PINS"
}

# offered_versions SPEC... prints "SPEC VERSION" for each SPEC (apt_spec) the host offers,
# VERSION its candidate (what apt would take), from one apt-cache call on the private state.
offered_versions() {
	# shellcheck disable=SC2046
	{ apt-cache $(apt_opts) show --no-all-versions "$@" 2>/dev/null || true; } | awk '
		function flush() { if (p != "") print (a == "all" ? p : p ":" a), v; p = a = v = "" }
		/^Package: / { p = $2 }
		/^Architecture: / { a = $2 }
		/^Version: / { v = $2 }
		/^$/ { flush() }
		END { flush() }'
}

# download_spec NAME ARCH [OFFERED] prints what apt-get download takes for NAME on ARCH:
# apt_spec=version when pinned, after checking that the host's candidate (in OFFERED, the
# output of offered_versions; asked when not given) is that version.
download_spec() {
	local name=$1 arch=$2 spec pin offered
	spec=$(apt_spec "$name" "$arch")
	pin=$(pinned_version "$name" "$arch")
	if [ -z "$pin" ]; then
		if [ "${REQUIRE_PINS:-}" = 1 ]; then
			echo "image: Debian package $spec is not pinned in $DEBIAN_PINS: add $name=VERSION (hack/image/pin-debian.sh)" >&2
			return 1
		fi
		echo "$spec"
		return
	fi
	offered=${3-$(offered_versions "$spec")}
	offered=$(awk -v s="$spec" '$1 == s { print $2; exit }' <<<"$offered")
	if [ "$offered" != "$pin" ]; then
		echo "image: Debian package $spec is pinned to $pin in $DEBIAN_PINS, but the host's apt sources offer ${offered:-no version of it}:" \
			"update the pins (hack/image/pin-debian.sh) or use apt sources that have $pin (a snapshot)" >&2
		return 1
	fi
	echo "$spec=$pin"
}

# deb_file DIR NAME ARCH prints the downloaded .deb of NAME for ARCH in DIR: the pinned
# version's (apt-get download writes an epoch's ":" as "%3a"), else the newest there.
deb_file() {
	local dir=$1 name=$2 arch=$3 pin
	pin=$(pinned_version "$name" "$arch")
	if [ -n "$pin" ]; then
		{ ls -1 "$dir/${name}_${pin//:/%3a}"_{"$arch",all}.deb 2>/dev/null || true; } | head -n1
		return
	fi
	(ls -1 "$dir/${name}"_*_{"$arch",all}.deb 2>/dev/null || true) | sort -V | tail -n1
}

# stage_iptables fills stage directory $2 for architecture $1 with what the image
# builder's iptables layer reads: debroot/, packages.txt and the iptables-wrapper.
stage_iptables() {
	local arch=$1 stage=$2 p latest
	mkdir -p "$stage/debroot"
	: >"$stage/packages.txt"
	for p in $PACKAGES netbase; do
		# The pinned (else the newest) downloaded version; others stay in the cache.
		latest=$(deb_file "$DEB_DIR/$arch" "$p" "$arch")
		[ -n "$latest" ] || { echo "image: no $p package for $arch" >&2; return 1; }
		dpkg-deb -x "$latest" "$stage/debroot"
		echo "$p $(dpkg-deb -f "$latest" Version)" >>"$stage/packages.txt"
	done
	(cd "$ROOT/hack/image" && GOFLAGS=-mod=readonly GOARCH=$arch go build -trimpath -ldflags='-s -w' \
		-o "$stage/iptables-wrapper" ./iptables-wrapper)
}

# debian_distro names the Debian release the host's apt sources serve (debian-12), for the
# SBOM's package URLs.
debian_distro() {
	(. /etc/os-release && echo "${ID:-debian}-${VERSION_ID:-unknown}")
}

# image_builder builds hack/image's builder into _output/bin/image-builder and prints its path.
image_builder() {
	(cd "$ROOT/hack/image" && GOFLAGS=-mod=readonly go build -trimpath -o "$OUT/bin/image-builder" .)
	echo "$OUT/bin/image-builder"
}
