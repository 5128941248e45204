#!/usr/bin/env bash
# Scenario 4 (the gate and the annotation end to end) on the running cluster (make cluster),
# one row per argument:
#   hack/cluster/scenario-gate.sh [ROW...]     ROW: gate-on (default), gate-off
# For each row: kubeadm's kube-proxy addon made that way (addon.sh patch | patch no-gate),
# the DaemonSet rolled out on both nodes, then test/cluster/gate (Go, build tag cluster):
# /configz and the log of kube-proxy on node-a show the gate as configured; of two echo
# Services, the one annotated against the gate (graceful under the gate, immediate
# without it) and the plain one, a removed endpoint's real server on node-a is kept at
# weight 0 while a connection is open (graceful) or deleted (immediate). Rows are
# appended to _output/cluster/gate/report.md and printed at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR="$CLUSTER_OUT/gate"
REPORT="$OUT_DIR/report.md"
START=$SECONDS
[ $# -gt 0 ] || set -- gate-on
STEPS=$(($# + 1))
progress() { step "scenario-gate [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }

# ours_way is addon.sh's arguments for a row: this scenario has ours' rows only.
ours_way() {
	case $1 in
	gate-on | gate-off) addon_way "$1" ;;
	*) echo "scenario-gate: unknown row $1 (gate-on, gate-off)" >&2; return 1 ;;
	esac
}

run_row() {
	local row=$1 way expect=on
	way=$(ours_way "$row")
	[ "$row" = gate-on ] || expect=off
	# shellcheck disable=SC2086
	addon_rollout $way
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	GATE_EXPECT=$expect GATE_ROW="ours ($OUR_PROXY_IMAGE), addon.sh $way" GATE_REPORT=$REPORT \
		"$OUT_DIR/gate.test" -test.v -test.timeout 20m -test.run TestGateAndAnnotation
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "scenario-gate: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	source "$CP_RUN/env"
	export CLUSTER_ADMIN_KUBECONFIG
	local row i=1
	for row in "$@"; do ours_way "$row" >/dev/null; done
	progress 1 "building test/cluster/gate"
	mkdir -p "$OUT_DIR"
	(source "$ROOT/hack/lib.sh" && nice -n 19 go test -c -tags cluster -o "$OUT_DIR/gate.test" ./test/cluster/gate)
	printf '| row | /configz (node-a) | kube-proxy log | Service | policy | endpoint left the slice -> real server on node-a | long-lived connection |\n|---|---|---|---|---|---|---|\n' >"$REPORT"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $row"
		run_row "$row"
	done
	step "scenario-gate: done in $((SECONDS - START)) s; $REPORT:"
	cat "$REPORT"
}

main "$@"
