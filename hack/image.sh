#!/usr/bin/env bash
# Builds the kube-proxy container image without a container daemon (make image):
#   _output/image/kube-proxy.oci.tar   one tarball: OCI image layout (index.json, blobs/) plus a
#                                      docker manifest.json; docker load, ctr import, podman load
#   _output/image/oci/                 the same OCI layout as a directory
#   _output/image/summary.txt          reference, index digest, size, per-platform manifests
#   _output/image/kube-proxy.linux-ARCH.spdx.json  each platform's SBOM (SPDX 2.3), also in the
#                                      image at /usr/share/doc/ipvs-proxy/sbom.spdx.json
# Per platform: the static kube-proxy (cmd/kube-proxy, vendor/) and ipvs-doctor (cmd/ipvs-doctor,
# for kubectl exec ds/kube-proxy -- ipvs-doctor), the iptables-wrapper
# (hack/image/iptables-wrapper) and iptables with its libraries from Debian packages of
# that architecture (hack/image/debian.sh: apt-get download through a private apt state
# under _output/image/apt; the host's dpkg and apt configuration are untouched), at the
# versions pinned in hack/image/debian-packages.txt (fails when the host offers others).
#
# Environment:
#   IMAGE            reference recorded in the tarball (hack/lib.sh: default ipvs-proxy/kube-proxy:dev)
#   IMAGE_PLATFORMS  space-separated (default "linux/amd64 linux/arm64")
#   IMAGE_APT_MAX_AGE  minutes before the private apt lists are refreshed (default 1440)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
IMG_OUT="$OUT/image"
source "$ROOT/hack/image/debian.sh"
# Every Debian package of this image is pinned (hack/image/debian-packages.txt).
REQUIRE_PINS=1

# stage_platform prepares _output/image/stage/ARCH: iptables (debroot/, packages.txt,
# iptables-wrapper), kube-proxy and ipvs-doctor.
stage_platform() {
	local arch=$1 stage="$IMG_OUT/stage/$1"
	rm -rf "$stage"
	stage_iptables "$arch" "$stage"
	step "image: building kube-proxy and ipvs-doctor $IPVS_PROXY_VERSION for linux/$arch"
	GOARCH=$arch go build -trimpath -ldflags="-s -w $LDFLAGS" -o "$stage/kube-proxy" ./cmd/kube-proxy
	GOARCH=$arch go build -trimpath -ldflags="-s -w $LDFLAGS" -o "$stage/ipvs-doctor" ./cmd/ipvs-doctor
}

main() {
	version_vars # once here: the binaries and the image labels get the same stamp
	LDFLAGS=$(version_ldflags)
	need_debian_tools
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
	"$(image_builder)" -image "$IMAGE" "${args[@]}" -distro "$(debian_distro)" \
		-oci-dir "$IMG_OUT/oci" -out "$IMG_OUT/kube-proxy.oci.tar" \
		-revision "$GIT_COMMIT" -version "$IPVS_PROXY_VERSION" -created "$BUILD_DATE" |
		tee "$IMG_OUT/summary.txt"
}

main "$@"
