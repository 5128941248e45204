#!/usr/bin/env bash
# Scenario 2 (node loss) on the running cluster (make cluster), one row per argument:
#   hack/cluster/scenario-nodeloss.sh [ROW...]     ROW: gate-on (default), gate-off, upstream
# NODELOSS_GRACE (e.g. 10s; default empty: kubeadm's default, 50 s) restarts
# kube-controller-manager with --node-monitor-grace-period=NODELOSS_GRACE for the rows
# (controlplane-up.sh --restart-controller-manager) and back to the default after them.
# For each row: kubeadm's addon made that way (addon.sh patch | patch no-gate | upstream),
# rolled out; test/cluster/nodeloss (Go, build tag cluster) kills node-b's qemu (SIGKILL,
# node-kill.sh) under traffic from node-a and records the node-lifecycle controller's,
# the EndpointSlice controller's and node-a's IPVS timings and what the client saw; then
# node-down.sh --delete node-b cleans up (the Node's pods go with it) and node-up.sh
# boots node-b again for the next row. Rows go to _output/cluster/nodeloss/report.md.
# NODELOSS_AFTER (default 150s): how long the test watches after the kill.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR="$CLUSTER_OUT/nodeloss"
REPORT="$OUT_DIR/report.md"
START=$SECONDS
[ $# -gt 0 ] || set -- gate-on
STEPS=$(($# + 1))
GRACE=${NODELOSS_GRACE:-}
progress() { step "scenario-nodeloss [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }


row_name() {
	local g="node-monitor-grace-period ${GRACE:-50s, the default}"
	case $1 in
	gate-on) echo "ours, gate on; $g" ;;
	gate-off) echo "ours, gate off; $g" ;;
	upstream) echo "upstream; $g" ;;
	esac
}

# grace restarts kube-controller-manager with node-monitor-grace-period $1 (empty: default).
grace() {
	CLUSTER_KCM_EXTRA_ARGS=${1:+--node-monitor-grace-period=$1} "$CLUSTER_DIR/controlplane-up.sh" --restart-controller-manager
}

# node_b_back cleans up the killed node-b and boots it again, kube-proxy running on it.
node_b_back() {
	"$CLUSTER_DIR/node-down.sh" --delete node-b
	NODE_TIMEOUT=${NODE_TIMEOUT:-14400} NODE_IMAGES="$(dirname "$OUR_PROXY_TARBALL")" "$CLUSTER_DIR/node-up.sh" --wait node-b
	kubectl -n kube-system rollout status ds/kube-proxy --timeout=600s
}

run_row() {
	local row=$1 way rc=0
	way=$(addon_way "$row")
	# shellcheck disable=SC2086
	addon_rollout $way
	mkdir -p "$OUT_DIR/$row${GRACE:+-$GRACE}"
	NODELOSS_ROW=$(row_name "$row") NODELOSS_REPORT=$REPORT NODELOSS_OUT="$OUT_DIR/$row${GRACE:+-$GRACE}" \
		NODE_KILL_SH="$CLUSTER_DIR/node-kill.sh" \
		"$OUT_DIR/nodeloss.test" -test.v -test.timeout 20m -test.run TestNodeLoss || rc=$?
	node_b_back
	return $rc
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "scenario-nodeloss: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	source "$CP_RUN/env"
	export CLUSTER_ADMIN_KUBECONFIG
	local row i=1
	for row in "$@"; do addon_way "$row" >/dev/null; done
	progress 1 "building test/cluster/nodeloss"
	mkdir -p "$OUT_DIR"
	(source "$ROOT/hack/lib.sh" && nice -n 19 go test -c -tags cluster -o "$OUT_DIR/nodeloss.test" ./test/cluster/nodeloss)
	[ -f "$REPORT" ] || printf '| row | kill -> node-b not Ready | kill -> endpoints ready=false | kill -> real servers on node-a | long-lived connections to node-b: error after the kill | client | new connections |\n|---|---|---|---|---|---|---|\n' >"$REPORT"
	# The grace goes back to kubeadm's also when a row fails (set -e ends the script there).
	[ -z "$GRACE" ] || trap 'grace ""' EXIT
	[ -z "$GRACE" ] || grace "$GRACE"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $(row_name "$row")"
		run_row "$row"
	done
	step "scenario-nodeloss: done in $((SECONDS - START)) s; $REPORT:"
	cat "$REPORT"
}

main "$@"
