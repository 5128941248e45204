#!/usr/bin/env bash
# Reboots the running cluster's node VMs with kernel profile PROFILE (make demo's profiles):
#   hack/cluster/nodes-profile.sh stock|legacy
# stock: Debian 6.1's ip_vs; legacy: hack/legacy-ipvs's ip_vs modules (pre-5.9 reuse handling)
# and conn_reuse_mode=0 (node-up.sh's CLUSTER_PROFILE). Stops every node (node-down.sh
# --delete: their Nodes and so their pods go), boots them together with that profile, waits
# for the Nodes to be Ready and for the kube-proxy DaemonSet on both, then reads each node's
# ip_vs (check-proxy.sh's probe) so the log shows what the nodes really run.
# Environment: CLUSTER_NODES ("node-a node-b"), node-up.sh's NODE_* (NODE_TIMEOUT: 14400 s).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
NODES=${CLUSTER_NODES:-node-a node-b}
export NODE_TIMEOUT=${NODE_TIMEOUT:-14400}
START=$SECONDS
progress() { step "nodes-profile [$1/3] $2 ($((SECONDS - START)) s so far)"; }

main() {
	local profile=${1:?usage: hack/cluster/nodes-profile.sh stock|legacy} n pids=() rc=0
	case $profile in stock | legacy) ;; *) echo "nodes-profile: $profile: stock or legacy" >&2; return 2 ;; esac
	[ -f "$CP_RUN/env" ] || { echo "nodes-profile: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	progress 1 "stopping $NODES"
	# shellcheck disable=SC2086
	"$CLUSTER_DIR/node-down.sh" --delete $NODES
	progress 2 "booting $NODES with the $profile ip_vs"
	for n in $NODES; do
		CLUSTER_PROFILE=$profile NODE_IMAGES="$(dirname "$OUR_PROXY_TARBALL")" "$CLUSTER_DIR/node-up.sh" --wait "$n" 2>&1 |
			sed -u "s/^/[$n] /" &
		pids+=($!)
	done
	for n in "${pids[@]}"; do wait "$n" || rc=1; done
	[ $rc = 0 ] || return $rc
	progress 3 "kube-proxy on every node; the nodes' ip_vs"
	"$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_CP_RUN/admin.conf" -n kube-system rollout status ds/kube-proxy --timeout=600s
	for n in $NODES; do grep -h 'node-start: .* ip_vs: ' "$OUT/cluster/run/$n/node.log" | sed "s/^/[$n] /" || true; done
	step "nodes-profile: $NODES up with the $profile ip_vs in $((SECONDS - START)) s"
}

main "$@"
