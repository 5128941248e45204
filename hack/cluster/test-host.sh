#!/usr/bin/env bash
# Step 5 of the cluster (make cluster-host-test): the host half tested on its own, no VM.
# Builds (cached), brings up a control plane of its own (_output/cluster/test-host, beside
# any running cluster), runs test/cluster/controllers (Deployment, ReplicaSet, scheduler,
# node IPAM, EndpointSlice controllers) and test/cluster/addon (kubeadm's kube-proxy addon,
# docs/kubeadm.md's swap through hack/cluster/addon.sh), and tears it down. Arguments go
# to go test (e.g. -run Addon, -v).
export CLUSTER_CP_RUN="$(cd "$(dirname "$0")/../.." && pwd)/_output/cluster/test-host"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
# One left by an interrupted run is stopped first.
[ ! -f "$CP_RUN/env" ] || "$CLUSTER_DIR/controlplane-down.sh" >/dev/null
trap '"$CLUSTER_DIR/controlplane-down.sh" >/dev/null' EXIT
start=$SECONDS
"$CLUSTER_DIR/controlplane-up.sh"
set -a
source "$CP_RUN/env"
set +a
export CLUSTER_ADDON_SCRIPT="$CLUSTER_DIR/addon.sh" OUR_PROXY_IMAGE UPSTREAM_PROXY_IMAGE TEST_SERVER_IMAGE
step "cluster host tests against $CP_APISERVER_URL"
go test -count=1 "$@" ./test/cluster/controllers ./test/cluster/addon
step "cluster host tests passed in $((SECONDS - start)) s"
