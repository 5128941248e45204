#!/usr/bin/env bash
# make conformance: the three runs of upstream's Service e2e tests on the running cluster
# (make cluster: control plane + node VMs, Ready), then the report.
#   1 build.sh   2 images.sh, node-images.sh (into the running nodes)   3 dns.sh (CoreDNS, once)
#   4 for each of upstream (addon.sh upstream: registry.k8s.io/kube-proxy:v1.37.2, ipvs mode),
#     gate-off (addon.sh patch no-gate: ours), gate-on (addon.sh patch: ours with
#     IPVSImmediateTermination): kubeadm re-renders the addon, the DaemonSet is restarted and
#     rolls out (addon_rollout), its image and the ConfigMap's gate are checked (a mismatch
#     stops; RUN/kube-proxy.txt), then run.sh writes _output/conformance/<name>/
#   5 test/conformance/cmd/report -> _output/conformance/report.md (a run this checkout did not
#     make: its results kept in the repository by keep.sh, test/conformance/results/RUN/)
# node-images.sh imports _output/conformance/images/*.oci.tar into each running node's
# containerd (those it lacks), so a plain make cluster is enough. CONFORMANCE_RUNS picks runs ("gate-on" alone, say); the others' directories are
# reported as they are, when present.
source "$(dirname "$0")/lib.sh"
RUNS=${CONFORMANCE_RUNS:-upstream gate-off gate-on}

# check_kube_proxy RUN stops make conformance when the kube-proxy DaemonSet's image and the
# ConfigMap's gate are not RUN's (its tests would be reported under the wrong name), before
# RUN's directory is made (the report would take that for this checkout's run, over the kept
# results); else writes them to _output/conformance/RUN/kube-proxy.txt.
check_kube_proxy() {
	local run=$1 image gate want_image=$OUR_PROXY_IMAGE want_gate=off
	image=$(kubectl -n kube-system get ds kube-proxy -o jsonpath='{.spec.template.spec.containers[0].image}')
	gate=$(configmap_gate)
	[ "$run" != upstream ] || want_image=$UPSTREAM_PROXY_IMAGE
	[ "$run" != gate-on ] || want_gate=on
	if [ "$image" != "$want_image" ] || [ "$gate" != "$want_gate" ]; then
		echo "conformance: $run: kube-proxy runs $image with the gate $gate, want $want_image with the gate $want_gate" >&2
		exit 1
	fi
	mkdir -p "$CONF_OUT/$run"
	echo "image $image, IPVSImmediateTermination $gate" | tee "$CONF_OUT/$run/kube-proxy.txt"
}
start=$SECONDS
# A misspelt run stops here, not after the builds, the images and the first runs.
for run in $RUNS; do addon_way "$run" >/dev/null || exit 2; done
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
	step "conformance: $run: hack/cluster/addon.sh ${way[*]}, rollout restart"
	# Restarted, not only waited for: from gate-off to gate-on only the ConfigMap changes, the
	# DaemonSet's template does not, and its pods would keep running with the gate off.
	addon_rollout "${way[@]}"
	check_kube_proxy "$run"
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	t=$SECONDS
	CONF_KUBE_PROXY_CHECKED=1 "$CONF_DIR/run.sh" "$CLUSTER_ADMIN_KUBECONFIG" "$run" || echo "conformance: $run: e2e exit $? (failures are in the report)"
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
	elif [ -d "$CONF_KEPT/$run" ]; then
		args+=("$run=$CONF_KEPT/$run")
	fi
done
# The first run given is the reference of "differs" and of -strict: say so when it is not upstream's.
reference=${args[0]:-none}
[ "${reference%%=*}" = upstream ] || note+="; no upstream run: the reference is ${reference%%=*}"
(cd "$ROOT" && go run ./test/conformance/cmd/report -out "$CONF_OUT/report.md" -note "$note" "${args[@]}")
step "conformance: done in $((SECONDS - start)) s: $CONF_OUT/report.md"
