#!/usr/bin/env bash
# Scenario 3 (image swap on a live cluster) on the running cluster (make cluster), one row
# per argument:
#   hack/cluster/scenario-swap.sh [ROW...]     ROW: overlay (default), patch, control
# For each row: kubeadm's stock addon (addon.sh upstream: upstream's image, ipvs mode), rolled
# out; then test/cluster/swap (Go, build tag cluster) starts traffic (new HTTP requests and 4
# long-lived echo connections through a Service's VIP from node-a), swaps the image as
# docs/kubeadm.md says ("overlay": way C, kubectl apply -k; "patch": way A without the gate,
# addon.sh patch no-gate), then turns the gate on by editing the ConfigMap (addon.sh gate-on).
# When the client is done, node-a is cleaned (kube-proxy --cleanup) and rebuilt by ours alone
# with the same Services and pods: what the swap left differs from that (leftovers) or not.
# "control": upstream's image the whole time, the same traffic for the same time and the same
# container work on node-a (two rollout restarts, addon.sh restart, and a state read between
# them), no swap: its failed requests are the floor the swap rows are read against.
# After each swap row ipvs-doctor runs in node-a's kube-proxy pod through kube-proxy's own
# kubeconfig (docs/kubeadm.md). Rows go to _output/cluster/swap/report.md; node states and the
# requests to _output/cluster/swap/ROW/.
# SWAP_DURATION (default 600s): the client's run, which must cover both rollouts.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
OUT_DIR="$CLUSTER_OUT/swap"
REPORT="$OUT_DIR/report.md"
START=$SECONDS
[ $# -gt 0 ] || set -- overlay
STEPS=$(($# + 1))
progress() { step "scenario-swap [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }


# swap_way is addon.sh's arguments for the swap of a row.
swap_way() {
	case $1 in
	overlay) echo overlay ;;
	patch) echo "patch no-gate" ;;
	control) echo none ;;
	*) echo "scenario-swap: unknown row $1 (overlay, patch, control)" >&2; return 1 ;;
	esac
}

# row_name is the report's name of a row.
row_name() {
	case $1 in
	control) echo "control: upstream alone (addon.sh upstream, then addon.sh restart twice; no swap)" ;;
	*) echo "upstream -> ours (addon.sh $2) -> gate on (addon.sh gate-on)" ;;
	esac
}

# doctor runs ipvs-doctor in node-a's kube-proxy pod (ours after the swap) through
# kube-proxy's own kubeconfig, as docs/kubeadm.md says: --in-cluster would reach the API
# server through the kubernetes Service, i.e. through the IPVS rules it checks.
doctor() {
	local pod
	pod=$(kubectl -n kube-system get pods -l k8s-app=kube-proxy --field-selector spec.nodeName=node-a \
		-o jsonpath='{.items[0].metadata.name}') || return
	[ -n "$pod" ] || { echo "scenario-swap: no kube-proxy pod on node-a for ipvs-doctor" | tee "$1" >&2; return 1; }
	step "scenario-swap: kubectl -n kube-system exec $pod -- ipvs-doctor --kubeconfig /var/lib/kube-proxy/kubeconfig.conf"
	kubectl -n kube-system exec "$pod" -- ipvs-doctor --kubeconfig /var/lib/kube-proxy/kubeconfig.conf 2>&1 | tee "$1"
}

# run_row runs left of || in main, where set -e does not hold: failures are returned by hand.
run_row() {
	local row=$1 way rc=0
	way=$(swap_way "$row")
	addon_rollout upstream || return
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	mkdir -p "$OUT_DIR/$row"
	SWAP_WAY=$way SWAP_ROW=$(row_name "$row" "$way") SWAP_REPORT=$REPORT \
		SWAP_OUT="$OUT_DIR/$row" CLUSTER_ADDON_SH="$CLUSTER_DIR/addon.sh" \
		"$OUT_DIR/swap.test" -test.v -test.timeout 40m -test.run TestImageSwap || rc=$?
	# Upstream's image has no ipvs-doctor.
	# Its exit status counts: 1 is a problem found (leftovers among them), 2 a part unread.
	[ "$row" = control ] || doctor "$OUT_DIR/$row/ipvs-doctor.txt" || { local d=$?; echo "scenario-swap: ipvs-doctor exit $d" >&2; [ $rc != 0 ] || rc=$d; }
	return $rc
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "scenario-swap: no cluster ($CP_RUN/env): make cluster" >&2; return 1; }
	source "$CP_RUN/env"
	export CLUSTER_ADMIN_KUBECONFIG
	local row i=1 failed=()
	for row in "$@"; do swap_way "$row" >/dev/null; done
	progress 1 "building test/cluster/swap"
	mkdir -p "$OUT_DIR"
	(source "$ROOT/hack/lib.sh" && nice -n 19 go test -c -tags cluster -o "$OUT_DIR/swap.test" ./test/cluster/swap)
	[ -f "$REPORT" ] || printf '| row | requests | failed | failure window | long-lived connections cut | steps | node-a state |\n|---|---|---|---|---|---|---|\n' >"$REPORT"
	for row in "$@"; do
		i=$((i + 1))
		progress "$i" "row $row"
		# A failed row (a failed request, a cut connection, a leftover) still has its
		# report line; the next rows run, and the script fails at the end.
		run_row "$row" || failed+=("$row")
	done
	step "scenario-swap: done in $((SECONDS - START)) s${failed:+; rows failed: ${failed[*]}}; $REPORT:"
	cat "$REPORT"
	[ ${#failed[@]} -eq 0 ]
}

main "$@"
