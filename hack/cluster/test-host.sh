#!/usr/bin/env bash
# Step 5 of the cluster (make cluster-host-test): the host half tested on its own, no VM.
# Builds (cached), brings up a control plane of its own (_output/cluster/test-host, beside
# any running cluster), runs test/cluster/controllers (Deployment, ReplicaSet, scheduler,
# node IPAM, EndpointSlice and node-lifecycle controllers) and test/cluster/addon
# (kubeadm's kube-proxy addon, docs/kubeadm.md's swap through hack/cluster/addon.sh), and
# tears it down. Arguments go to go test (e.g. -run Addon, -v).
export CLUSTER_CP_RUN="$(cd "$(dirname "$0")/../.." && pwd)/_output/cluster/test-host"
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
# One left by an interrupted run is stopped first.
[ ! -f "$CP_RUN/env" ] || "$CLUSTER_DIR/controlplane-down.sh" >/dev/null
trap '"$CLUSTER_DIR/controlplane-down.sh" >/dev/null' EXIT
start=$SECONDS
# A short node-monitor-grace-period (kubeadm keeps the default, 50 s) keeps the
# node-lifecycle test short; the nodes of the other tests are done long before it.
export CLUSTER_NODE_MONITOR_GRACE=20s
CLUSTER_KCM_EXTRA_ARGS="--node-monitor-grace-period=$CLUSTER_NODE_MONITOR_GRACE ${CLUSTER_KCM_EXTRA_ARGS:-}" \
	"$CLUSTER_DIR/controlplane-up.sh"
set -a
source "$CP_RUN/env"
set +a
export CLUSTER_ADDON_SCRIPT="$CLUSTER_DIR/addon.sh" OUR_PROXY_IMAGE UPSTREAM_PROXY_IMAGE TEST_SERVER_IMAGE
step "cluster host tests against $CP_APISERVER_URL"
# One package at a time: both change cluster-wide objects (nodes, the kube-proxy addon).
go test -count=1 -p 1 "$@" ./test/cluster/controllers ./test/cluster/addon
step "cluster host tests passed in $((SECONDS - start)) s"
