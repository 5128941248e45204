#!/usr/bin/env bash
# make cluster: the whole real cluster, left running (hack/cluster/README.md).
#   1 Debian packages (hack/install-deps.sh), builds (cached by stamps): control-plane binaries, kubelet, the images, the node initramfs
#   2 node-proxy (the API server's path to the kubelets), then the control plane on loopback: etcd, kube-apiserver (with node-proxy's egress flag),
#     kube-controller-manager (node IPAM, EndpointSlice, ...), kube-scheduler
#   3 node VMs node-a and node-b (booted together, each imports every image), Nodes Ready
#   4 kubeadm's kube-proxy addon (addon.sh WAY), DaemonSet rolled out on both nodes
# Usage: hack/cluster/up.sh [WAY...]   WAY as addon.sh takes it; default "patch" (ours, gate on);
#   "patch no-gate" (ours, gate off); "upstream" (registry.k8s.io/kube-proxy:v1.37.2).
# Environment: CLUSTER_NODES ("node-a node-b"), CLUSTER_SKIP_MAKE_IMAGE=1 (reuse make image's
#   tarball), node-up.sh's NODE_* settings (NODE_TIMEOUT: 14400 s here, after which the node
#   VMs stop). The node VMs hold /tmp/ipvs-vm.lock (shared).
# Tear down with hack/cluster/down.sh (make cluster-down).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
NODES=${CLUSTER_NODES:-node-a node-b}
# node-up.sh's VMs stop after NODE_TIMEOUT (its default, 3600 s, ended a cluster in the
# middle of a scenario run): a cluster left running gets 4 hours.
export NODE_TIMEOUT=${NODE_TIMEOUT:-14400}
STEPS=4
START=$SECONDS
progress() { step "cluster up [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }
# timed NAME CMD...: runs CMD and records how long it took in the summary.
TIMES=()
timed() {
	local name=$1 t=$SECONDS
	shift
	"$@"
	TIMES+=("$name $((SECONDS - t)) s")
}

builds() {
	# The node VMs boot Debian's kernel with qemu (a fresh machine has neither: make cluster
	# stopped after 18 min of builds, "no /boot/vmlinuz-*"); seconds when all are there.
	"$ROOT/hack/install-deps.sh"
	"$CLUSTER_DIR/build.sh"
	"$CLUSTER_DIR/build-node.sh"
	"$CLUSTER_DIR/images.sh"
	"$CLUSTER_DIR/node-image.sh" >/dev/null
}

# control_plane starts node-proxy, then the control plane with its egress flag.
control_plane() {
	local flag
	flag=$("$CLUSTER_DIR/node-proxy.sh" up | tail -n1)
	CP_APISERVER_EXTRA_ARGS="$flag" "$CLUSTER_DIR/controlplane-up.sh"
}

# nodes boots every node at once; each imports the images under _output/cluster/images and
# our image (make image's tarball); waits for all Nodes to be Ready.
nodes() {
	local n pids=() rc=0
	for n in $NODES; do
		NODE_IMAGES="$(dirname "$OUR_PROXY_TARBALL")" "$CLUSTER_DIR/node-up.sh" --wait "$n" 2>&1 | sed -u "s/^/[$n] /" &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	return $rc
}

# addon renders kubeadm's kube-proxy addon the way $@ says and waits for its pods.
addon() {
	"$CLUSTER_DIR/addon.sh" "$@"
	"$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_CP_RUN/admin.conf" -n kube-system \
		rollout status ds/kube-proxy --timeout="${ROLLOUT_TIMEOUT:-600s}"
}

main() {
	[ ! -f "$CLUSTER_CP_RUN/env" ] || { echo "cluster: already up ($CLUSTER_CP_RUN/env): make cluster-down first" >&2; return 1; }
	[ $# -gt 0 ] || set -- patch
	progress 1 "builds (cached by stamps)"
	timed builds builds
	progress 2 "node-proxy, control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)"
	timed control-plane control_plane
	progress 3 "node VMs: $NODES"
	timed nodes nodes
	progress 4 "kube-proxy addon: addon.sh $*"
	timed addon addon "$@"
	"$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_CP_RUN/admin.conf" get nodes,pods -A -o wide
	step "cluster up in $((SECONDS - START)) s ($(IFS=,; echo "${TIMES[*]}")); kubectl: export KUBECONFIG=$CLUSTER_CP_RUN/admin.conf; $CLUSTER_BIN/kubectl"
}

main "$@"
