#!/usr/bin/env bash
# Scenario 3 (image swap on a live cluster) on the running cluster (make cluster), one row
# per argument:
#   hack/cluster/scenario-swap.sh [ROW...]     ROW: overlay (default), patch
#   hack/cluster/scenario-swap.sh baseline     node-a's state with ours alone (run first on a
#                                              cluster that ran only ours; the rows compare with it)
# For each row: kubeadm's stock addon (addon.sh upstream: upstream's image, ipvs mode), rolled
# out; then test/cluster/swap (Go, build tag cluster) starts traffic (new HTTP requests and 4
# long-lived echo connections through a Service's VIP from node-a), swaps the image as
# docs/kubeadm.md says ("overlay": way C, kubectl apply -k; "patch": way A without the gate,
# addon.sh patch no-gate), then turns the gate on by editing the ConfigMap (addon.sh gate-on).
# After each row ipvs-doctor --in-cluster runs in node-a's kube-proxy pod. Rows go to
# _output/cluster/swap/report.md; node states and the requests to _output/cluster/swap/ROW/.
# SWAP_DURATION (default 600s): the client's run, which must cover both rollouts.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR="$CLUSTER_OUT/swap"
REPORT="$OUT_DIR/report.md"
BASELINE="$CLUSTER_OUT/swap-baseline"
START=$SECONDS
[ $# -gt 0 ] || set -- overlay
STEPS=$(($# + 1))
progress() { step "scenario-swap [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }

kubectl() { "$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG" "$@"; }

# swap_way is addon.sh's arguments for the swap of a row.
swap_way() {
	case $1 in
	overlay) echo overlay ;;
	patch) echo "patch no-gate" ;;
	baseline) echo - ;;
	*) echo "scenario-swap: unknown row $1 (overlay, patch, baseline)" >&2; return 1 ;;
	esac
}

# doctor runs ipvs-doctor --in-cluster in node-a's kube-proxy pod (ours after the swap).
doctor() {
	local pod
	pod=$(kubectl -n kube-system get pods -l k8s-app=kube-proxy --field-selector spec.nodeName=node-a \
		-o jsonpath='{.items[0].metadata.name}')
	step "scenario-swap: kubectl -n kube-system exec $pod -- ipvs-doctor --in-cluster"
	kubectl -n kube-system exec "$pod" -- ipvs-doctor --in-cluster 2>&1 | tee "$1"
}

# baseline saves node-a's state with ours alone: the test's reader run on the cluster as it
# is (make cluster's default addon, ours with the gate), no swap.
baseline() {
	SWAP_SAVE_BASELINE="$BASELINE" "$OUT_DIR/swap.test" -test.v -test.timeout 10m -test.run TestBaseline
}

run_row() {
	local row=$1 way rc=0
	way=$(swap_way "$row")
	addon_rollout upstream
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	mkdir -p "$OUT_DIR/$row"
	SWAP_WAY=$way SWAP_ROW="upstream -> ours (addon.sh $way) -> gate on (addon.sh gate-on)" SWAP_REPORT=$REPORT \
		SWAP_OUT="$OUT_DIR/$row" SWAP_BASELINE=$BASELINE CLUSTER_ADDON_SH="$CLUSTER_DIR/addon.sh" \
		"$OUT_DIR/swap.test" -test.v -test.timeout 30m -test.run TestImageSwap || rc=$?
	doctor "$OUT_DIR/$row/ipvs-doctor.txt"
	return $rc
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "scenario-swap: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	source "$CP_RUN/env"
	export CLUSTER_ADMIN_KUBECONFIG
	local row i=1
	for row in "$@"; do swap_way "$row" >/dev/null; done
	progress 1 "building test/cluster/swap"
	mkdir -p "$OUT_DIR"
	(source "$ROOT/hack/lib.sh" && nice -n 19 go test -c -tags cluster -o "$OUT_DIR/swap.test" ./test/cluster/swap)
	[ -f "$REPORT" ] || printf '| row | requests | failed | failure window | long-lived connections cut | steps | node-a state |\n|---|---|---|---|---|---|---|\n' >"$REPORT"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $row"
		if [ "$row" = baseline ]; then baseline; else run_row "$row"; fi
	done
	step "scenario-swap: done in $((SECONDS - START)) s; $REPORT:"
	cat "$REPORT"
}

main "$@"
