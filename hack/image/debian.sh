# iptables user space from Debian packages for an image's stage directory, fetched with
# apt-get download through a private apt state under _output/image/apt (the host's
# sources; the host's dpkg and apt configuration are untouched). Shared by hack/image.sh
# (make image) and hack/cluster/images.sh (upstream's kube-proxy image); source it after
# hack/lib.sh, with PLATFORMS set ("linux/amd64 linux/arm64").
APT_DIR="$OUT/image/apt"
DEB_DIR="$OUT/image/debs"
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
	echo -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" \
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
	local arch=$1 dir="$DEB_DIR/$1" p want=()
	mkdir -p "$dir"
	for p in $PACKAGES; do want+=("$p:$arch"); done
	want+=(netbase)
	# shellcheck disable=SC2046
	(cd "$dir" && apt-get $(apt_opts) -qq download "${want[@]}")
}

# stage_iptables fills stage directory $2 for architecture $1 with what the image
# builder's iptables layer reads: debroot/, packages.txt and the iptables-wrapper.
stage_iptables() {
	local arch=$1 stage=$2 p latest
	mkdir -p "$stage/debroot"
	: >"$stage/packages.txt"
	for p in $PACKAGES netbase; do
		# The newest downloaded version of each package (older ones stay in the cache).
		latest=$( (ls -1 "$DEB_DIR/$arch/${p}"_*_{"$arch",all}.deb 2>/dev/null || true) | sort -V | tail -n1)
		[ -n "$latest" ] || { echo "image: no $p package for $arch" >&2; return 1; }
		dpkg-deb -x "$latest" "$stage/debroot"
		echo "$p $(dpkg-deb -f "$latest" Version)" >>"$stage/packages.txt"
	done
	(cd "$ROOT/hack/image" && GOFLAGS=-mod=readonly GOARCH=$arch go build -trimpath -ldflags='-s -w' \
		-o "$stage/iptables-wrapper" ./iptables-wrapper)
}

# image_builder builds hack/image's builder into _output/bin/image-builder and prints its path.
image_builder() {
	(cd "$ROOT/hack/image" && GOFLAGS=-mod=readonly go build -trimpath -o "$OUT/bin/image-builder" .)
	echo "$OUT/bin/image-builder"
}
