#!/usr/bin/env bash
# make conformance: the three runs of upstream's Service e2e tests on the running cluster
# (make cluster: control plane + node VMs, Ready), then the report.
#   1 build.sh   2 images.sh, node-images.sh (into the running nodes)   3 dns.sh (CoreDNS, once)
#   4 for each of upstream (addon.sh upstream: registry.k8s.io/kube-proxy:v1.37.2, ipvs mode),
#     gate-off (addon.sh patch no-gate: ours), gate-on (addon.sh patch: ours with
#     IPVSImmediateTermination): kubeadm re-renders the addon, the DaemonSet rolls out, then
#     run.sh writes _output/conformance/<name>/
#   5 test/conformance/cmd/report -> _output/conformance/report.md (a run this checkout did not
#     make: its results kept in the repository by keep.sh, test/conformance/results/RUN/)
# node-images.sh imports _output/conformance/images/*.oci.tar into each running node's
# containerd (those it lacks), so a plain make cluster is enough. CONFORMANCE_RUNS picks runs ("gate-on" alone, say); the others' directories are
# reported as they are, when present.
source "$(dirname "$0")/lib.sh"
RUNS=${CONFORMANCE_RUNS:-upstream gate-off gate-on}
start=$SECONDS
"$CONF_DIR/build.sh"
"$CONF_DIR/images.sh"
# shellcheck disable=SC1091
source "$CLUSTER_CP_RUN/env"
step "conformance: nodes"
kubectl get nodes -o wide
"$CONF_DIR/node-images.sh"
"$CONF_DIR/dns.sh"
for run in $RUNS; do
	w=$(addon_way "$run") || exit 2
	read -ra way <<<"$w"
	step "conformance: $run: hack/cluster/addon.sh ${way[*]}"
	"$CLUSTER_DIR/addon.sh" "${way[@]}"
	kubectl -n kube-system rollout status ds/kube-proxy --timeout=600s
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	t=$SECONDS
	"$CONF_DIR/run.sh" "$CLUSTER_ADMIN_KUBECONFIG" "$run" || echo "conformance: $run: e2e exit $? (failures are in the report)"
	echo "conformance: $run took $((SECONDS - t)) s" | tee "$CONF_OUT/$run/duration.txt"
done
step "conformance: report"
args=()
note="report of commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)"
# A run this checkout did not make comes from the results kept in the repository (keep.sh),
# when there are some: the report says, per run, which commit and day they are of.
for run in upstream gate-off gate-on; do
	if [ -d "$CONF_OUT/$run" ]; then
		args+=("$run=$CONF_OUT/$run")
	elif [ -d "$ROOT/test/conformance/results/$run" ]; then
		args+=("$run=$ROOT/test/conformance/results/$run")
	fi
done
# The first run given is the reference of "differs" and of -strict: say so when it is not upstream's.
reference=${args[0]:-none}
[ "${reference%%=*}" = upstream ] || note+="; no upstream run: the reference is ${reference%%=*}"
(cd "$ROOT" && go run ./test/conformance/cmd/report -out "$CONF_OUT/report.md" -note "$note" "${args[@]}")
step "conformance: done in $((SECONDS - start)) s: $CONF_OUT/report.md"
