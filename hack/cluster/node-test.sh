#!/usr/bin/env bash
# Step 5 of the node side of `make cluster`: brings up the loopback control plane (or reuses
# the one up) and the node VMs (default node-a and node-b, on one L2), waits for their Nodes to
# be Ready, runs test/cluster/node (Nodes Ready with kubelet v1.37.2 and containerd; pods on
# every node; pod-to-pod traffic on the same node and across nodes, IPv4 and IPv6, from pods
# and from the nodes' host network; kubelet /healthz and pod logs through the API server via
# node-proxy.sh), prints the timings and tears everything down.
#   hack/cluster/node-test.sh            # CLUSTER_NODES="node-a node-b"
#   CLUSTER_NODES=node-a hack/cluster/node-test.sh
#   NODE_KEEP=1 hack/cluster/node-test.sh  # leave the nodes and control plane up afterwards
# The node VMs hold /tmp/ipvs-vm.lock (shared) while they run.
source "$(dirname "$0")/node-lib.sh"
cd "$ROOT"
NODES=${CLUSTER_NODES:-node-a node-b}
STEPS=5
START=$SECONDS
STARTED_CP="" KUBELET_PROXY=0
progress() { step "node-test [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }

# control_plane starts etcd and kube-apiserver with node-proxy.sh's egress configuration (the
# API server's path to the kubelets), or reuses a control plane already up; the kubelet-path
# test runs when that API server has the egress flag.
control_plane() {
	local flags
	flags=$("$NODE_SRC/node-proxy.sh" up | tail -n1)
	if [ -f "$CP_RUN/env" ]; then
		source "$CP_RUN/env"
		if curl -fsS --max-time 5 --cacert "$CP_CA" -H "Authorization: Bearer $CP_TOKEN" "$CP_APISERVER_URL/readyz" >/dev/null 2>&1; then
			echo "node-test: reusing the control plane up at $CP_APISERVER_URL"
			tr '\0' '\n' <"/proc/$CP_APISERVER_PID/cmdline" | grep -qx -- "${flags%% *}" && KUBELET_PROXY=1
			return
		fi
		"$ROOT/hack/controlplane/down.sh"
	fi
	CP_APISERVER_EXTRA_ARGS="$flags" "$ROOT/hack/controlplane/up.sh"
	STARTED_CP=1 KUBELET_PROXY=1
	source "$CP_RUN/env"
}

cleanup() {
	local rc=$?
	[ -z "${NODE_KEEP:-}" ] || { echo "node-test: NODE_KEEP set: nodes and control plane left up"; return; }
	# shellcheck disable=SC2086
	"$NODE_SRC/node-down.sh" --delete $NODES || true
	[ -z "$STARTED_CP" ] || "$ROOT/hack/controlplane/down.sh" >/dev/null || true
	"$NODE_SRC/node-proxy.sh" down >/dev/null || true
	return $rc
}

# nodes_up boots every node at once and waits for all of them to be Ready.
nodes_up() {
	local n pids=() rc=0
	for n in $NODES; do
		"$NODE_SRC/node-up.sh" --wait "$n" 2>&1 | sed -u "s/^/[$n] /" &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	return $rc
}

main() {
	trap cleanup EXIT
	progress 1 "builds (kubelet, node initramfs, images)"
	"$NODE_SRC/node-image.sh" >/dev/null
	(source "$ROOT/hack/lib.sh" && go test -c -tags cluster -o "$NODE_OUT/node.test" ./test/cluster/node)
	progress 2 "control plane"
	control_plane
	progress 3 "node VMs: $NODES"
	local t=$SECONDS
	nodes_up
	local ready=$((SECONDS - t))
	progress 4 "test/cluster/node"
	t=$SECONDS
	CP_KUBECONFIG=$CP_KUBECONFIG CLUSTER_NODES="$NODES" CLUSTER_KUBELET_PROXY=$KUBELET_PROXY \
		CLUSTER_APISERVER_GUEST_ADDR=$CP_GUEST_ADDR \
		"$NODE_OUT/node.test" -test.v -test.timeout 15m
	step "node-test: passed; nodes Ready ${ready} s after boot began, tests $((SECONDS - t)) s, total $((SECONDS - START)) s"
	progress 5 "teardown"
}

main "$@"
