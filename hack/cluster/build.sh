#!/usr/bin/env bash
# Step 1 of the cluster (make cluster-host): builds the control-plane controllers and tools
# from k8s.io/kubernetes K8S_VERSION in hack/controlplane's tools module, static, version
# stamped, into _output/cluster/bin:
#   kube-controller-manager, kube-scheduler, kubeadm, kubectl
# after hack/controlplane/build.sh (etcd, kube-apiserver, kube-proxy-upstream; cached).
# A stamp records what they were built from; a second run with the same module and script
# is a no-op. Builds run under nice -n 19: they are long and other work shares the CPUs.
source "$(dirname "$0")/lib.sh"
cd "$CP_DIR"
# The tools module is not vendored; -mod=readonly makes a go.sum that does not match go.mod an error.
export GOFLAGS="-mod=readonly -buildvcs=false"
binaries="kube-controller-manager kube-scheduler kubeadm kubectl"
stamp="$CLUSTER_BIN/.stamp"
ldflags=$(k8s_version_ldflags)
key=$(echo "$ldflags" | cat go.mod go.sum "$CLUSTER_DIR/build.sh" - | sha256sum | cut -c1-16)-$(go env GOVERSION)

"$CP_DIR/build.sh"
if built_from "$CLUSTER_BIN" "$key" $binaries; then
	step "cluster build: binaries up to date ($key): $CLUSTER_BIN"
	exit 0
fi
mkdir -p "$CLUSTER_BIN"
rm -f "$stamp"
start=$SECONDS
for b in $binaries; do
	step "cluster build: $b $K8S_VERSION (k8s.io/kubernetes/cmd/$b)"
	t=$SECONDS
	nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$CLUSTER_BIN/$b" "k8s.io/kubernetes/cmd/$b"
	echo "$b built in $((SECONDS - t)) s"
done
echo "$key" >"$stamp"
step "cluster build: done in $((SECONDS - start)) s: $(cd "$CLUSTER_BIN" && ls -s --block-size=M $binaries | tr '\n' ' ')"
