#!/usr/bin/env bash
# Builds the kube-proxy container image without a container daemon (make image):
#   _output/image/kube-proxy.oci.tar   one tarball: OCI image layout (index.json, blobs/) plus a
#                                      docker manifest.json; docker load, ctr import, podman load
#   _output/image/oci/                 the same OCI layout as a directory
#   _output/image/summary.txt          reference, index digest, size, per-platform manifests
# Per platform: the static kube-proxy (cmd/kube-proxy, vendor/) and ipvs-doctor (cmd/ipvs-doctor,
# for kubectl exec ds/kube-proxy -- ipvs-doctor), the iptables-wrapper
# (hack/image/iptables-wrapper) and iptables with its libraries from Debian packages of
# that architecture, fetched with apt-get download through a private apt state under
# _output/image/apt (the host's sources; the host's dpkg and apt configuration are untouched).
#
# Environment:
#   IMAGE            reference recorded in the tarball (default ipvs-proxy/kube-proxy:dev)
#   IMAGE_PLATFORMS  space-separated (default "linux/amd64 linux/arm64")
#   IMAGE_APT_MAX_AGE  minutes before the private apt lists are refreshed (default 1440)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
IMAGE=${IMAGE:-ipvs-proxy/kube-proxy:dev}
PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
IMG_OUT="$OUT/image"
APT_DIR="$IMG_OUT/apt"
# iptables and everything its binaries and extensions link against (the builder checks
# DT_NEEDED and fails naming any library missing from this list), netbase for /etc/protocols.
PACKAGES="iptables libip4tc2 libip6tc2 libxtables12 libmnl0 libnftnl11 libnetfilter-conntrack3 libnfnetlink0 libc6"

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
	local arch=$1 dir="$IMG_OUT/debs/$1" p want=()
	mkdir -p "$dir"
	for p in $PACKAGES; do want+=("$p:$arch"); done
	want+=(netbase)
	# shellcheck disable=SC2046
	(cd "$dir" && apt-get $(apt_opts) -qq download "${want[@]}")
}

# stage_platform prepares _output/image/stage/ARCH: debroot/, kube-proxy, iptables-wrapper, packages.txt.
stage_platform() {
	local arch=$1 stage="$IMG_OUT/stage/$1" deb p latest
	rm -rf "$stage" && mkdir -p "$stage/debroot"
	: >"$stage/packages.txt"
	for p in $PACKAGES netbase; do
		# The newest downloaded version of each package (older ones stay in the cache).
		latest=$( (ls -1 "$IMG_OUT/debs/$arch/${p}"_*_{"$arch",all}.deb 2>/dev/null || true) | sort -V | tail -n1)
		[ -n "$latest" ] || { echo "image: no $p package for $arch" >&2; return 1; }
		dpkg-deb -x "$latest" "$stage/debroot"
		echo "$p $(dpkg-deb -f "$latest" Version)" >>"$stage/packages.txt"
	done
	step "image: building kube-proxy and ipvs-doctor for linux/$arch"
	GOARCH=$arch go build -trimpath -ldflags='-s -w' -o "$stage/kube-proxy" ./cmd/kube-proxy
	GOARCH=$arch go build -trimpath -ldflags='-s -w' -o "$stage/ipvs-doctor" ./cmd/ipvs-doctor
	(cd hack/image && GOFLAGS=-mod=readonly GOARCH=$arch go build -trimpath -ldflags='-s -w' \
		-o "$stage/iptables-wrapper" ./iptables-wrapper)
}

main() {
	command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null ||
		{ echo "image: needs Debian's apt-get and dpkg-deb" >&2; exit 1; }
	refresh_lists
	local platform arch args=()
	for platform in $PLATFORMS; do
		arch=${platform#*/}
		step "image: Debian packages for $arch"
		fetch_debs "$arch"
		stage_platform "$arch"
		args+=(-platform "$platform=$IMG_OUT/stage/$arch")
	done
	step "image: assembling $IMAGE"
	(cd hack/image && GOFLAGS=-mod=readonly go build -trimpath -o "$OUT/bin/image-builder" .)
	"$OUT/bin/image-builder" -image "$IMAGE" "${args[@]}" \
		-oci-dir "$IMG_OUT/oci" -out "$IMG_OUT/kube-proxy.oci.tar" \
		-revision "$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
		-version "$(git describe --tags --always --dirty 2>/dev/null || echo dev)" \
		-created "$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)" |
		tee "$IMG_OUT/summary.txt"
}

main "$@"
