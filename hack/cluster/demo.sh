#!/usr/bin/env bash
# make cluster-demo: the demonstration on the real cluster (hack/cluster/README.md).
#   1 make cluster (ours with the gate) unless a cluster is up
#   2 scenario 4, the gate and the annotation: rows gate-on, gate-off       (scenario-gate.sh)
#   3 scenario 1, rolling update: rows gate-on, gate-off, upstream by rollout restart
#     ("rolling"), then gate-on, upstream by kubectl set image ("rolling-set-image"; same
#     report)                                                               (scenario-rolling.sh)
#     then gate-on, upstream through IPv6 Services ("rolling-ipv6": ROLLING_FAMILY=IPv6), and
#     with a 5 s preStop sleep ("rolling-prestop": ROLLING_PRESTOP=5); each its own report
#   4 scenario 3, image swap: rows control (upstream alone, no swap), overlay (upstream -> ours
#     by way C -> gate by the ConfigMap), patch (upstream -> ours by way A without the gate ->
#     gate by the ConfigMap)                                                (scenario-swap.sh)
#   5 scenario 2, node loss: rows upstream, gate-off, gate-on with kubeadm's
#     node-monitor-grace-period, then with CLUSTER_DEMO_GRACE (10s)        (scenario-nodeloss.sh)
#   6 the legacy profile: both nodes rebooted with hack/legacy-ipvs's ip_vs and
#     conn_reuse_mode=0 (nodes-profile.sh legacy), then scenario 1's rows gate-on, gate-off,
#     upstream there (_output/cluster/rolling-legacy)
#   7 the report: _output/cluster/report.md (one table per scenario) and requests.svg
#   8 make cluster-down (CLUSTER_DEMO_KEEP=1 leaves the cluster running, on the legacy profile
#     when step 6 ran)
# CLUSTER_DEMO_SCENARIOS (default "gate rolling rolling-set-image rolling-ipv6 rolling-prestop swap
# nodeloss rolling-legacy")
# picks scenarios;
# the report also shows the last results of the others ("none": the report of what is there).
# A scenario that fails (a failed row) is marked in the report's step times and the next
# ones still run; the script then exits 1.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export CP_RUN=$CLUSTER_CP_RUN
START=$SECONDS
# Every scenario, in the order main runs them: the default, and the names the check takes.
ALL_SCENARIOS="gate rolling rolling-set-image rolling-ipv6 rolling-prestop swap nodeloss rolling-legacy"
SCENARIOS=${CLUSTER_DEMO_SCENARIOS:-$ALL_SCENARIOS}
# The node VMs (node-up.sh, also node-b's reboots in scenario 2) outlive the whole demo.
export NODE_TIMEOUT=${NODE_TIMEOUT:-14400}
GRACE=${CLUSTER_DEMO_GRACE:-10s}
# Steps 2-5 are the stock profile's: scenario 1's rows fail on nodes that run another ip_vs
# (a cluster left on the legacy profile by CLUSTER_DEMO_KEEP=1), and nodes brought back
# (scenario 2's node-b) boot stock. Step 6 sets legacy for itself.
export CLUSTER_PROFILE=stock
progress() { step "cluster-demo [$1/8] $2 ($((SECONDS - START)) s so far)"; }
TIMES=()
FAILED=()
# timed NAME CMD...: runs CMD, records its time; a failure is recorded and the demo goes on.
timed() {
	local name=$1 t=$SECONDS rc=0
	shift
	"$@" || rc=$?
	if [ $rc = 0 ]; then
		TIMES+=("$name $((SECONDS - t)) s")
	else
		TIMES+=("$name FAILED (exit $rc) after $((SECONDS - t)) s")
		FAILED+=("$name")
	fi
}

# wanted NAME: NAME is one of SCENARIOS' words (split as the for loops in main split them:
# a newline or tab between names counts as a space).
wanted() {
	local w
	for w in $SCENARIOS; do [ "$w" != "$1" ] || return 0; done
	return 1
}

# drop_rows DIR TEXT: removes the rows holding TEXT from DIR's report, the others stay.
drop_rows() {
	local f="$CLUSTER_OUT/$1/report.md"
	[ -f "$f" ] || return 0
	grep -v -F -- "$2" "$f" >"$f.new" || true
	mv "$f.new" "$f"
}

# rolling_legacy reboots the nodes with the legacy ip_vs and runs scenario 1 there. timed
# runs it left of ||, where set -e does not hold: each step's failure is returned by hand.
rolling_legacy() {
	"$CLUSTER_DIR/nodes-profile.sh" legacy || return
	ROLLING_OUT="$CLUSTER_OUT/rolling-legacy" CLUSTER_PROFILE=legacy "$CLUSTER_DIR/scenario-rolling.sh" gate-on gate-off upstream
}

# nodeloss runs both graces; a failure of either is its failure (no set -e here, see above).
nodeloss() {
	local rc=0
	"$CLUSTER_DIR/scenario-nodeloss.sh" upstream gate-off gate-on || rc=$?
	NODELOSS_GRACE=$GRACE "$CLUSTER_DIR/scenario-nodeloss.sh" upstream gate-off gate-on || rc=$?
	return $rc
}

report() {
	local header
	header="Run $(date -u '+%Y-%m-%d %H:%M UTC') by \`make cluster-demo\` (hack/cluster/demo.sh) on $(nproc) host cores,"
	header+=" commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); steps: $(IFS=,; echo "${TIMES[*]}")."
	header+=" Each scenario's script and Go test are described in hack/cluster/README.md."
	(source "$ROOT/hack/lib.sh" && nice -n 19 go run ./test/cluster/cmd/cluster-report -out "$CLUSTER_OUT" -header "$header")
}

main() {
	local up=""
	local s
	for s in $SCENARIOS; do
		[[ " $ALL_SCENARIOS none " == *" $s "* ]] ||
			{ echo "cluster-demo: CLUSTER_DEMO_SCENARIOS: no scenario '$s' ($ALL_SCENARIOS none)" >&2; return 2; }
	done
	for s in $SCENARIOS; do
		# A fresh report for each scenario run; the others' outputs stay in the report.
		# rolling and rolling-set-image share rolling's report (rows "...; restart" and
		# "...; set-image"): each drops only its own rows, so that running one alone keeps
		# the other's last rows.
		case $s in
		none) ;;
		rolling) drop_rows rolling "; restart |" ;;
		rolling-set-image) drop_rows rolling "; set-image |" ;;
		*)
			rm -f "$CLUSTER_OUT/$s/report.md"
			rm -rf "${CLUSTER_OUT:?}/$s/"*/
			;;
		esac
	done
	progress 1 "the cluster"
	if [ ! -f "$CP_RUN/env" ]; then
		timed "make cluster" "$CLUSTER_DIR/up.sh" patch
		[ ${#FAILED[@]} -eq 0 ] || { echo "cluster-demo: make cluster failed" >&2; return 1; }
		up=1
	fi
	progress 2 "scenario 4: the gate and the annotation"
	! wanted gate || timed "scenario 4" "$CLUSTER_DIR/scenario-gate.sh" gate-on gate-off
	progress 3 "scenario 1: rolling update"
	! wanted rolling || timed "scenario 1" "$CLUSTER_DIR/scenario-rolling.sh" gate-on gate-off upstream
	! wanted rolling-set-image || timed "scenario 1 set-image" env ROLLING_HOW=set-image "$CLUSTER_DIR/scenario-rolling.sh" gate-on upstream
	! wanted rolling-ipv6 || timed "scenario 1 IPv6" env ROLLING_FAMILY=IPv6 ROLLING_OUT="$CLUSTER_OUT/rolling-ipv6" "$CLUSTER_DIR/scenario-rolling.sh" gate-on upstream
	! wanted rolling-prestop || timed "scenario 1 preStop" env ROLLING_PRESTOP=5 ROLLING_OUT="$CLUSTER_OUT/rolling-prestop" "$CLUSTER_DIR/scenario-rolling.sh" gate-on upstream
	progress 4 "scenario 3: image swap"
	! wanted swap || timed "scenario 3" "$CLUSTER_DIR/scenario-swap.sh" control overlay patch
	progress 5 "scenario 2: node loss (grace: kubeadm's, then $GRACE)"
	! wanted nodeloss || timed "scenario 2" nodeloss
	progress 6 "the legacy profile: nodes rebooted, scenario 1"
	! wanted rolling-legacy || timed "scenario 1 legacy" rolling_legacy
	progress 7 "report"
	report
	progress 8 "teardown"
	if [ "${CLUSTER_DEMO_KEEP:-}" = 1 ]; then
		step "cluster-demo: cluster left running (CLUSTER_DEMO_KEEP=1)${up:+; brought up here}"
	else
		"$CLUSTER_DIR/down.sh"
	fi
	step "cluster-demo: done in $((SECONDS - START)) s${FAILED:+; FAILED: ${FAILED[*]}}; report $CLUSTER_OUT/report.md, plot $CLUSTER_OUT/requests.svg"
	[ ${#FAILED[@]} -eq 0 ]
}

main "$@"
