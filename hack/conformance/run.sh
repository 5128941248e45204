#!/usr/bin/env bash
# Step 3 of make conformance: runs upstream's e2e tests (hack/conformance/build.sh's e2e.test,
# k8s.io/kubernetes v1.37.2) against the cluster of KUBECONFIG:
#
#   hack/conformance/run.sh KUBECONFIG [RUN]
#
# Selected: every "[sig-network] Services" test and every sig-network [Conformance] test, less
# the skips below (each with its reason; `run.sh --skips` prints them as a Markdown table).
# Two passes: the tests labelled Serial or Disruptive (kube-proxy's restart, SCTP) run alone after
# the others (the Disruptive one deletes the kube-proxy pods: it would fail its neighbours).
# Writes _output/conformance/RUN/ (RUN defaults to the date): junit_parallel_01.xml and
# junit_serial_01.xml (the e2e framework's --report-dir reports, what
# test/conformance/cmd/report reads), selected.txt and selection/ (the dry run's), dry-run.log,
# parallel.log, serial.log, commands.txt, commit.txt (conformance.sh adds kube-proxy.txt and
# duration.txt; an earlier run's are removed, kube-proxy.txt unless conformance.sh called).
#
# Environment:
#   CONFORMANCE_PROCS    parallel Ginkgo processes of the first pass (default 2; 1 runs e2e.test
#                        alone, without the Ginkgo CLI)
#   CONFORMANCE_TIMEOUT  the whole suite's timeout (default 3h)
#   CONFORMANCE_DRY_RUN=1  only list the selected tests (every run lists them first: a dry run,
#                        nothing touches the cluster): RUN/selected.txt, RUN/selection/
#   CONFORMANCE_FOCUS / CONFORMANCE_SKIP  one more focus / skip regular expression
#   CONFORMANCE_ONLY     a focus expression that replaces the two above (rerun one test)
source "$(dirname "$0")/lib.sh"

FOCUS=(
	'\[sig-network\] Services '
	'\[sig-network\].*\[Conformance\]'
)
# SKIPS: "regular expression|why". Ginkgo matches each against the test's full text. The focus
# selects no cloud load balancer test (they are "[sig-network] LoadBalancers ..."; the one
# Services test about Type LoadBalancer checks only its ClusterIP and runs) and no IPv6-only one
# (those are "[Feature:IPv6DualStack]").
SKIPS=(
	'should implement NodePort and HealthCheckNodePort correctly when ExternalTrafficPolicy changes|needs 3 schedulable nodes (the cluster has 2; the test would skip itself)'
	'\[sig-network\] Services should work after restarting apiserver|restarts kube-apiserver as a kube-system pod: here it runs on the host (the test would skip itself)'
	'\[sig-network\] DNS |DNS server tests: they need dig in agnhost (upstream builds agnhost on Alpine with bind-tools; ours has no bind9-dnsutils) and the glibc-dns-testing image, neither built here (CoreDNS is: dns.sh); they test the DNS server, kube-proxy only as the kube-dns ClusterIP that the Service tests use anyway'
	'\[sig-network\] Proxy version v1|kube-apiserver proxying to pods and Services (pods/proxy, services/proxy): the API server runs on the host loopback and reaches only the kubelets (node-proxy), not the pod network; it tests the API server, not kube-proxy'
	'\[sig-network\] Services should create endpoints for unready pods|waits for its pods to answer through kube-apiserver'"'"'s pods/proxy (framework/pod WaitForPodsResponding), which the API server on the host cannot reach (as Proxy version v1); failed so in the first run (2026-12-06, gate on: "the server is currently unable to handle the request"); PublishNotReadyAddresses through kube-proxy stays covered by "should be able to connect to terminating and unready endpoints if PublishNotReadyAddresses is true"'
)

if [ "${1:-}" = --skips ]; then
	echo "| skip (Ginkgo regular expression) | why |"
	echo "|---|---|"
	for s in "${SKIPS[@]}"; do printf '| `%s` | %s |\n' "${s%%|*}" "${s#*|}"; done
	exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 KUBECONFIG [RUN] | $0 --skips" >&2; exit 2; }
KUBECONFIG_FILE=$(realpath "$1")
RUN=${2:-$(date -u +%Y%m%dT%H%M%SZ)}
RUN_DIR="$CONF_OUT/$RUN"
PROCS=${CONFORMANCE_PROCS:-2}
TIMEOUT=${CONFORMANCE_TIMEOUT:-3h}
[ -n "${CONFORMANCE_FOCUS:-}" ] && FOCUS+=("$CONFORMANCE_FOCUS")
[ -n "${CONFORMANCE_ONLY:-}" ] && FOCUS=("$CONFORMANCE_ONLY")
[ -n "${CONFORMANCE_SKIP:-}" ] && SKIPS+=("$CONFORMANCE_SKIP|CONFORMANCE_SKIP")

# An earlier run's results go first: a run that stops before its own (a build that fails)
# must not leave them to the report as its own.
mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/junit*.xml "$RUN_DIR"/junit*.xml.gz "$RUN_DIR/selected.txt" "$RUN_DIR/duration.txt"
# kube-proxy.txt is conformance.sh's check of the addon, written just before it calls run.sh
# (CONF_KUBE_PROXY_CHECKED=1); run by hand, an earlier run's would be kept (keep.sh) as this one's.
[ "${CONF_KUBE_PROXY_CHECKED:-}" = 1 ] || rm -f "$RUN_DIR/kube-proxy.txt"
step "conformance run $RUN [1/3]: e2e.test, ginkgo and kubectl"
"$CONF_DIR/build.sh"
KUBECTL="$CLUSTER_BIN/kubectl"
[ -x "$KUBECTL" ] || [ "${CONFORMANCE_DRY_RUN:-}" = 1 ] || "$CLUSTER_DIR/build.sh"

# One flag per focus and skip expression: Ginkgo ORs them.
filters=()
for f in "${FOCUS[@]}"; do filters+=(--focus="$f"); done
for s in "${SKIPS[@]}"; do filters+=(--skip="${s%%|*}"); done
# The e2e framework's own flags (after --): the cluster, where reports go, and the waits at the
# start of the suite stretched for TCG nodes (kube-system pods and DaemonSets, schedulable nodes).
e2e_args=(
	--kubeconfig="$KUBECONFIG_FILE" --kubectl-path="$KUBECTL" --provider=skeleton
	--e2e-output-dir="$RUN_DIR" --disable-log-dump
	--system-pods-startup-timeout=10m --system-daemonsets-startup-timeout=10m
	--node-schedulable-timeout=10m --allowed-not-ready-nodes=0 --dns-domain=cluster.local
)

# run_pass NAME PROCS REPORT_DIR [GINKGO FLAGS...]: one e2e.test run writing
# REPORT_DIR/junit_NAME_01.xml and RUN/NAME.log; returns e2e.test's (or the Ginkgo CLI's)
# exit status.
run_pass() {
	local name=$1 procs=$2 report_dir=$3 cmd
	shift 3
	local args=("${e2e_args[@]}" --report-dir="$report_dir" --report-prefix="${name}_")
	if [ "$procs" = 1 ]; then
		# Ginkgo's own flags take the ginkgo. prefix when e2e.test runs alone.
		cmd=("$CONF_BIN/e2e.test" --ginkgo.no-color "${@/#--/--ginkgo.}" "${filters[@]/#--/--ginkgo.}" "${args[@]}")
	else
		cmd=("$CONF_BIN/ginkgo" run --procs="$procs" --no-color "$@" "${filters[@]}" "$CONF_BIN/e2e.test" -- "${args[@]}")
	fi
	printf '%q ' "${cmd[@]}" >>"$RUN_DIR/commands.txt"
	echo >>"$RUN_DIR/commands.txt"
	(cd "$RUN_DIR" && "${cmd[@]}") >"$RUN_DIR/$name.log" 2>&1
}

: >"$RUN_DIR/commands.txt"
# The commit that ran (keep.sh's about.txt: HEAD may have moved by the time it runs).
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || commit=unknown
[ "$commit" = unknown ] || git -C "$ROOT" diff --quiet HEAD -- || commit+=-dirty
echo "$commit" >"$RUN_DIR/commit.txt"
start=$SECONDS
rc=0
# The selection, always: a dry run (e2e.test alone, seconds; no spec or suite set-up runs)
# into RUN/selection/, listed in RUN/selected.txt; the report counts a selected test without
# a result as not run.
step "conformance run $RUN [2/3]: the selection (dry run, e2e.test alone, no Ginkgo CLI)"
rm -rf "$RUN_DIR/selection"
run_pass dry-run 1 "$RUN_DIR/selection" --dry-run || { tail -n 40 "$RUN_DIR/dry-run.log" >&2; exit 1; }
# In a dry run the selected tests "pass"; the others are skipped by the filters. The names are
# unescaped as Go's XML encoder wrote them, &amp; last ("&amp;lt;" is "&lt;", not "<").
{ grep -o '<testcase name="\[It\] [^"]*" classname="[^"]*" status="passed"' "$RUN_DIR/selection/junit_dry-run_01.xml" || true; } |
	sed -e 's/^<testcase name="\[It\] //' -e 's/" classname=.*//' \
		-e 's/&#39;/'"'"'/g' -e 's/&#34;/"/g' -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g' |
	LC_ALL=C sort >"$RUN_DIR/selected.txt"
selected=$(wc -l <"$RUN_DIR/selected.txt")
echo "$selected tests selected: $RUN_DIR/selected.txt"
# grep finding nothing ended run.sh here without a word (pipefail): say it.
[ "$selected" -gt 0 ] || { echo "conformance: the dry run selected no test (the filters: $RUN_DIR/commands.txt)" >&2; exit 1; }
if [ "${CONFORMANCE_DRY_RUN:-}" = 1 ]; then
	exit 0
fi
# The node count, given: the suite counts the nodes in its set-up, which runs in Ginkgo's
# first process only, so in the others the tests that need 2 nodes skipped themselves
# ("Requires at least 2 nodes (not -1)": externalTrafficPolicy=Local for type=NodePort in the
# upstream run of 2026-12-07). Ready and schedulable, as the suite counts them.
num_nodes=$("$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" get nodes --no-headers | awk '$2 == "Ready"' | wc -l)
[ "$num_nodes" -gt 0 ] || { echo "conformance: no Ready schedulable node" >&2; exit 1; }
e2e_args+=(--num-nodes="$num_nodes")
step "conformance run $RUN [2/3]: pass 1, $PROCS Ginkgo process(es), not Serial/Disruptive, $num_nodes nodes (timeout $TIMEOUT)"
run_pass parallel "$PROCS" "$RUN_DIR" --label-filter='!Serial && !Disruptive' --timeout="$TIMEOUT" || rc=$?
step "conformance run $RUN [2/3]: pass 2, one process, Serial or Disruptive ($((SECONDS - start)) s so far)"
run_pass serial 1 "$RUN_DIR" --label-filter='Serial || Disruptive' --timeout="$TIMEOUT" || rc=$?
elapsed=$((SECONDS - start))

step "conformance run $RUN [3/3]: results (exit $rc, $elapsed s)"
for pass in parallel serial; do
	junit="$RUN_DIR/junit_${pass}_01.xml"
	if [ ! -f "$junit" ]; then
		tail -n 40 "$RUN_DIR/$pass.log" >&2
		echo "conformance: no $junit (log: $RUN_DIR/$pass.log)" >&2
		exit 1
	fi
	echo "$pass: $(grep -o '<testsuite [^>]*>' "$junit" | head -n1)"
done
echo "conformance run $RUN: $elapsed s; report: go run ./test/conformance/cmd/report upstream=DIR gate-off=DIR gate-on=DIR"
exit "$rc"
