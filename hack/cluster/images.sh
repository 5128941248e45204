#!/usr/bin/env bash
# Step 3 of the cluster (make cluster-host): the images the nodes import with
# `ctr -n k8s.io images import` (no registry, no daemon), as OCI tarballs:
#   _output/cluster/images/pause.oci.tar            registry.k8s.io/pause:3.10.2  (test/cluster/cmd/pause)
#   _output/cluster/images/test-server.oci.tar      ipvs-proxy/test-server:dev    (test/cluster/cmd/test-server)
#   _output/cluster/images/test-server-v2.oci.tar   ipvs-proxy/test-server:v2     (the same, a second tag for
#       scenario 1's `kubectl set image`)
#   _output/cluster/images/kube-proxy-upstream.oci.tar  registry.k8s.io/kube-proxy:v1.37.2: upstream's
#       kube-proxy (hack/controlplane's build) with iptables, the iptables-wrapper and ipset,
#       as upstream's image has them
#   _output/image/kube-proxy.oci.tar                ours, from make image (hack/image.sh, run here)
# linux/amd64 only for the first four (the node VMs). All use hack/image's builder and
# hack/image/debian.sh's Debian packaging. Set CLUSTER_SKIP_MAKE_IMAGE=1 to reuse an existing
# _output/image/kube-proxy.oci.tar.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# The private apt lists keep make image's platforms (an amd64-only update would drop arm64's).
PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
source "$ROOT/hack/image/debian.sh"
ARCH=amd64
STAGE="$CLUSTER_IMAGES/stage"
CREATED=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)

# build_image NAME REFERENCE TITLE STAGE_DIR BUILDER_ARGS...: writes $CLUSTER_IMAGES/NAME.oci.tar.
build_image() {
	local name=$1 ref=$2 title=$3 stage=$4
	shift 4
	step "images: assembling $ref ($name.oci.tar)"
	"$BUILDER" -image "$ref" -platform "linux/$ARCH=$stage" -title "$title" \
		-oci-dir "$CLUSTER_IMAGES/oci/$name" -out "$CLUSTER_IMAGES/$name.oci.tar" \
		-revision "$REVISION" -created "$CREATED" "$@" | tee "$CLUSTER_IMAGES/$name.summary.txt"
}

# single_binary_image NAME REFERENCE PACKAGE DESCRIPTION: an image of one static Go binary
# of this module at /NAME, its entrypoint, on a root skeleton.
single_binary_image() {
	local name=$1 ref=$2 pkg=$3 description=$4 stage="$STAGE/$1"
	rm -rf "$stage" && mkdir -p "$stage"
	GOARCH=$ARCH go build -trimpath -ldflags='-s -w' -o "$stage/$name" "$pkg"
	build_image "$name" "$ref" "ipvs-proxy cluster $name" "$stage" -iptables=false \
		-binary "$name=$name" -entrypoint "/$name" -description "$description" \
		-version "$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
}

# upstream_proxy_image packages hack/controlplane's upstream kube-proxy like
# registry.k8s.io/kube-proxy: /usr/local/bin/kube-proxy on iptables (both backends,
# the wrapper choosing one) and ipset, which upstream's IPVS mode runs.
upstream_proxy_image() {
	local stage="$STAGE/kube-proxy-upstream"
	PACKAGES="$PACKAGES ipset libipset13"
	refresh_lists
	fetch_debs "$ARCH"
	rm -rf "$stage"
	stage_iptables "$ARCH" "$stage"
	cp "$CP_BIN/kube-proxy-upstream" "$stage/kube-proxy"
	build_image kube-proxy-upstream "$UPSTREAM_PROXY_IMAGE" "kube-proxy (upstream $K8S_VERSION)" "$stage" \
		-binary usr/local/bin/kube-proxy=kube-proxy -entrypoint /usr/local/bin/kube-proxy \
		-debian-file usr/sbin/ipset -version "$K8S_VERSION" \
		-description "Upstream kube-proxy $K8S_VERSION built from k8s.io/kubernetes by hack/controlplane, packaged like registry.k8s.io/kube-proxy for the test cluster."
}

main() {
	need_debian_tools
	local start=$SECONDS
	mkdir -p "$CLUSTER_IMAGES" "$OUT/bin"
	"$CP_DIR/build.sh"
	BUILDER=$(image_builder)
	single_binary_image pause "$PAUSE_IMAGE" ./test/cluster/cmd/pause \
		"Sandbox process: sleeps until SIGTERM/SIGINT, reaps zombies."
	single_binary_image test-server "$TEST_SERVER_IMAGE" ./test/cluster/cmd/test-server \
		"Answers its pod name on HTTP 8080, TCP echo 9000 and UDP 5353."
	build_image test-server-v2 "$TEST_SERVER_IMAGE_V2" "ipvs-proxy cluster test-server" "$STAGE/test-server" -iptables=false \
		-binary test-server=test-server -entrypoint /test-server -version "$(git describe --tags --always --dirty 2>/dev/null || echo dev)" \
		-description "Answers its pod name on HTTP 8080, TCP echo 9000 and UDP 5353 (second tag, for kubectl set image)."
	single_binary_image rolling-client "$ROLLING_CLIENT_IMAGE" ./test/cluster/cmd/rolling-client \
		"Rolling-update scenario: HTTP client with source-port reuse; IPVS real-server watcher."
	upstream_proxy_image
	if [ "${CLUSTER_SKIP_MAKE_IMAGE:-}" = 1 ] && [ -f "$OUR_PROXY_TARBALL" ]; then
		step "images: reusing $OUR_PROXY_TARBALL"
	else
		step "images: make image ($OUR_PROXY_IMAGE)"
		IMAGE=$OUR_PROXY_IMAGE "$ROOT/hack/image.sh"
	fi
	step "images: done in $((SECONDS - start)) s"
	ls -l "$CLUSTER_IMAGES"/*.oci.tar "$OUR_PROXY_TARBALL"
}

main "$@"
