#!/usr/bin/env bash
# Builds kube-apiserver, etcd and upstream kube-proxy (all K8S_VERSION, static) from
# the hack/controlplane module into _output/controlplane/bin. A stamp records what
# they were built from; a second run with the same go.mod/go.sum is a no-op.
source "$(dirname "$0")/lib.sh"
cd "$CP_DIR"
# Not vendored: the tools module resolves through the module cache/proxy, and
# -mod=readonly makes a go.sum that does not match go.mod an error.
export GOFLAGS="-mod=readonly -buildvcs=false"
version_ldflags=$(k8s_version_ldflags)

binaries="kube-apiserver etcd kube-proxy-upstream"
stamp="$CP_BIN/.stamp"
# The ldflags (lib.sh's version stamp) are part of what the binaries are built from.
key=$(echo "$version_ldflags" | cat go.mod go.sum build.sh - | sha256sum | cut -c1-16)-$(go env GOVERSION)

if built_from "$CP_BIN" "$key" $binaries; then
	step "control-plane binaries up to date ($key): $CP_BIN"
	exit 0
fi
mkdir -p "$CP_BIN"
rm -f "$stamp"
start=$SECONDS
step "go mod download (module proxy)"
go mod download
step "building kube-apiserver $K8S_VERSION"
go build -trimpath -ldflags "$version_ldflags" -o "$CP_BIN/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
step "building etcd (go.etcd.io/etcd/server/v3)"
go build -trimpath -ldflags "-s -w" -o "$CP_BIN/etcd" go.etcd.io/etcd/server/v3
step "building upstream kube-proxy $K8S_VERSION"
go build -trimpath -ldflags "$version_ldflags" -o "$CP_BIN/kube-proxy-upstream" k8s.io/kubernetes/cmd/kube-proxy
echo "$key" >"$stamp"
step "done in $((SECONDS - start)) s: $(cd "$CP_BIN" && ls -s --block-size=M $binaries | tr '\n' ' ')"
