#!/usr/bin/env bash
# Scenario 1 (rolling update) on the running cluster (make cluster), one row per argument:
#   hack/cluster/scenario-rolling.sh [ROW...]     ROW: gate-on (default), gate-off, upstream
# For each row: kubeadm's kube-proxy addon made that way (addon.sh patch | patch no-gate |
# upstream), the DaemonSet rolled out on both nodes, then test/cluster/rolling (Go, build tag
# cluster): 3 test-server replicas behind a ClusterIP, a client pod on node-a with a pool of
# reused source ports, `rollout restart` while it runs. Rows are appended to
# _output/cluster/rolling/report.md and printed side by side at the end.
# ROLLING_DURATION (Go duration, default 150s): how long the client sends requests;
# ROLLING_RATE (default 20): its most requests per second.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR="$CLUSTER_OUT/rolling"
REPORT="$OUT_DIR/report.md"
START=$SECONDS
[ $# -gt 0 ] || set -- gate-on
STEPS=$(($# + 1))
progress() { step "scenario-rolling [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }

kubectl() { "$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG" "$@"; }

# addon_way is addon.sh's arguments for a row.
addon_way() {
	case $1 in
	gate-on) echo patch ;;
	gate-off) echo "patch no-gate" ;;
	upstream) echo upstream ;;
	*) echo "scenario-rolling: unknown row $1 (gate-on, gate-off, upstream)" >&2; return 1 ;;
	esac
}

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
	ROLLING_ROW=$(row_name "$row") ROLLING_REPORT=$REPORT \
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
	(source "$ROOT/hack/lib.sh" && go test -c -tags cluster -o "$OUT_DIR/rolling.test" ./test/cluster/rolling)
	printf '| row | requests | failed | slow >1 s | failure window | pod deletion -> real server gone (node-a) |\n|---|---|---|---|---|---|\n' >"$REPORT"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $(row_name "$row")"
		run_row "$row"
	done
	step "scenario-rolling: done in $((SECONDS - START)) s; $REPORT:"
	cat "$REPORT"
}

main "$@"
