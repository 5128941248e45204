#!/usr/bin/env bash
# Step 1 of the node side of `make cluster`: builds the node binaries the VMs run.
#   kubelet v1.37.2 (k8s.io/kubernetes/cmd/kubelet, from hack/controlplane's tools module), static
# into _output/cluster/bin. A stamp (hash of the tools module's go.mod/go.sum, this script and
# the Go version) makes a second run a no-op; the build runs at nice 19 because it takes
# minutes on 2 cores and VM tests may be running.
source "$(dirname "$0")/../controlplane/lib.sh"
CLUSTER_BIN="$OUT/cluster/bin"
STEPS=1
START=$SECONDS
progress() { step "build-node [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }

version_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=37 \
 -X k8s.io/component-base/version.gitTreeState=clean"

# build_kubelet builds kubelet unless its stamp matches.
build_kubelet() {
	local stamp="$CLUSTER_BIN/.kubelet.stamp" key
	key=$(cat "$CP_DIR/go.mod" "$CP_DIR/go.sum" "$0" | sha256sum | cut -c1-16)-$(go env GOVERSION)
	if [ -x "$CLUSTER_BIN/kubelet" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
		progress 1 "kubelet $K8S_VERSION up to date ($key)"
		return
	fi
	progress 1 "building kubelet $K8S_VERSION (static, nice 19)"
	rm -f "$stamp"
	# Not vendored: the tools module resolves through the module cache/proxy.
	(cd "$CP_DIR" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 nice -n 19 \
		go build -trimpath -ldflags "$version_ldflags" -o "$CLUSTER_BIN/kubelet" k8s.io/kubernetes/cmd/kubelet)
	echo "$key" >"$stamp"
}

main() {
	mkdir -p "$CLUSTER_BIN"
	build_kubelet
	step "build-node: done in $((SECONDS - START)) s: $(cd "$CLUSTER_BIN" && ls -s --block-size=M kubelet | tr '\n' ' ')"
}

main "$@"
