#!/usr/bin/env bash
# Scenario 1 (rolling update) on the running cluster (make cluster), one row per argument:
#   hack/cluster/scenario-rolling.sh [ROW...]     ROW: gate-on (default), gate-off, upstream
# For each row: kubeadm's kube-proxy addon made that way (addon.sh patch | patch no-gate |
# upstream), the DaemonSet rolled out on both nodes, then test/cluster/rolling (Go, build tag
# cluster): 3 test-server replicas behind a ClusterIP and a NodePort Service, two clients on
# node-a with pools of reused source ports (three quarters of the requests through the
# ClusterIP, a quarter through node-a's NodePort), and the update while they run. Rows are
# appended to OUT/report.md (its header written when missing) and printed at the end, with
# node-a's ip_vs as the node reports it (stock, or legacy: CLUSTER_PROFILE=legacy nodes).
# ROLLING_DURATION (Go duration, default 150s): how long the clients send requests;
# ROLLING_RATE (default 20, 2 at least): their most requests per second together;
# ROLLING_HOW: restart (default: kubectl rollout restart) or set-image (kubectl set image to
# ipvs-proxy/test-server:v2, the same image under a second tag);
# ROLLING_PRESTOP (seconds, default none): the pods' preStop sleep, so that an old pod keeps
# serving while it terminates (its endpoint terminating and serving) until the sleep ends;
# ROLLING_FAMILY (IPv4, the default, or IPv6): the Services' IP family (single-stack; the
# cluster is dual-stack);
# ROLLING_OUT (default _output/cluster/rolling): where the report goes;
# CLUSTER_PROFILE (stock or legacy): when set, a row fails unless node-a runs that ip_vs.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR=${ROLLING_OUT:-$CLUSTER_OUT/rolling}
REPORT="$OUT_DIR/report.md"
START=$SECONDS
[ $# -gt 0 ] || set -- gate-on
STEPS=$(($# + 1))
progress() { step "scenario-rolling [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }


row_name() {
	case $1 in
	gate-on) echo "ours ($OUR_PROXY_IMAGE), gate on" ;;
	gate-off) echo "ours ($OUR_PROXY_IMAGE), gate off" ;;
	upstream) echo "upstream ($UPSTREAM_PROXY_IMAGE)" ;;
	esac
}

run_row() {
	local row=$1 way
	way=$(addon_way "$row")
	# shellcheck disable=SC2086
	addon_rollout $way
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	ROLLING_ROW=$(row_name "$row") ROLLING_REPORT=$REPORT ROLLING_PROFILE=${CLUSTER_PROFILE:-} \
		"$OUT_DIR/rolling.test" -test.v -test.timeout 30m -test.run TestRollingRestart
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "scenario-rolling: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	source "$CP_RUN/env"
	export CLUSTER_ADMIN_KUBECONFIG
	local row i=1
	for row in "$@"; do addon_way "$row" >/dev/null; done
	progress 1 "building test/cluster/rolling"
	mkdir -p "$OUT_DIR"
	(source "$ROOT/hack/lib.sh" && nice -n 19 go test -c -tags cluster -o "$OUT_DIR/rolling.test" ./test/cluster/rolling)
	local header="| row | ip_vs on node-a | requests (ClusterIP) | failed | slow >1 s | failure window | requests (NodePort) | failed | failure window | pod deletion -> real server gone (node-a) |"
	[ "$(head -n1 "$REPORT" 2>/dev/null)" = "$header" ] ||
		printf '%s\n|---|---|---|---|---|---|---|---|---|---|\n' "$header" >"$REPORT"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $(row_name "$row")"
		run_row "$row"
	done
	step "scenario-rolling: done in $((SECONDS - START)) s; $REPORT:"
	cat "$REPORT"
}

main "$@"
