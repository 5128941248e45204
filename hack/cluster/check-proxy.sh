#!/usr/bin/env bash
# Checks kube-proxy as the DaemonSet's pod on every node of the running cluster (make cluster):
#   1 the pods: Running on each node, hostNetwork, privileged, the image, the log's first lines
#     (in-cluster config, the iptables backend the wrapper picked, the gate)
#   2 /healthz (:10256) and /metrics (127.0.0.1:10249) from a host-network busybox pod on each
#     node (the host cannot route to the nodes' addresses), and the node's ip_vs: its taint
#     (OE: hack/legacy-ipvs's legacy modules; none: Debian's), srcversion and conn_reuse_mode
#   3 ipvs-doctor [ARGS] in each kube-proxy pod (kubectl exec; ours only: upstream's image has
#     none); by default through kube-proxy's own kubeconfig, as docs/kubeadm.md recommends
# The kubernetes Service's IPVS virtual server shows up in ipvs-doctor's output.
source "$(dirname "$0")/lib.sh"
export CP_RUN=$CLUSTER_CP_RUN
source "$CP_RUN/env"
NODES=${CLUSTER_NODES:-node-a node-b}
START=$SECONDS
progress() { step "check-proxy [$1/3] $2 ($((SECONDS - START)) s so far)"; }

proxy_pod() {
	kubectl -n kube-system get pods -l k8s-app=kube-proxy --field-selector "spec.nodeName=$1" \
		-o jsonpath='{.items[0].metadata.name}'
}

pods() {
	kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide
	local n pod
	for n in $NODES; do
		pod=$(proxy_pod "$n")
		[ -n "$pod" ] || { echo "check-proxy: no kube-proxy pod on $n" >&2; return 1; }
		kubectl -n kube-system get pod "$pod" -o jsonpath='{.metadata.name}: phase {.status.phase}, hostNetwork {.spec.hostNetwork}, privileged {.spec.containers[0].securityContext.privileged}, image {.spec.containers[0].image}{"\n"}'
		kubectl -n kube-system logs "$pod" | grep -iE 'in-cluster|kubeconfig|iptables|backend|legacy|nft|feature|gate|IPVSImmediate|Using ipvs|proxier' | head -n 12 || true
	done
}

# PROBE is the probe pod's script: each read that fails fails the pod (the taint, the
# conn_reuse_mode, /healthz, /metrics; srcversion is absent for Debian's module).
# shellcheck disable=SC2016
PROBE='t=$(cat /sys/module/ip_vs/taint) && r=$(cat /proc/sys/net/ipv4/vs/conn_reuse_mode) || exit 1
echo "ip_vs: taint \"$t\" srcversion $(cat /sys/module/ip_vs/srcversion 2>/dev/null) conn_reuse_mode $r"
h=$(wget -qO- http://127.0.0.1:10256/healthz) || { echo "healthz: failed"; exit 1; }
echo "healthz: $h"
m=$(wget -qO- http://127.0.0.1:10249/metrics) || { echo "metrics: failed"; exit 1; }
echo "$m" | grep -E "^(kubeproxy_sync_proxy_rules_last_timestamp_seconds|kubeproxy_sync_proxy_rules_duration_seconds_count|ipvsproxy_[a-z_]+)[ {]" | head -n 12'

# endpoints runs a host-network busybox pod on each node that fetches /healthz and /metrics.
endpoints() {
	local n
	for n in $NODES; do
		kubectl delete pod -n default "probe-$n" --ignore-not-found --wait=true >/dev/null
		kubectl run -n default "probe-$n" --image=cluster.local/busybox:1 --image-pull-policy=Never --restart=Never \
			--overrides="{\"spec\":{\"nodeName\":\"$n\",\"hostNetwork\":true,\"automountServiceAccountToken\":false}}" \
			--command -- /bin/busybox sh -c "$PROBE" >/dev/null
		kubectl wait -n default --for=jsonpath='{.status.phase}'=Succeeded "pod/probe-$n" --timeout=180s >/dev/null ||
			{ kubectl logs -n default "probe-$n" || true; kubectl -n default describe pod "probe-$n" | tail -n 20; return 1; }
		echo "--- $n:"
		kubectl logs -n default "probe-$n"
		kubectl delete pod -n default "probe-$n" --wait=false >/dev/null
	done
}

doctor() {
	local n pod
	for n in $NODES; do
		pod=$(proxy_pod "$n")
		if [ "$(kubectl -n kube-system get pod "$pod" -o jsonpath='{.spec.containers[0].image}')" = "$UPSTREAM_PROXY_IMAGE" ]; then
			echo "--- $n: $pod runs upstream's image, which has no ipvs-doctor"
			continue
		fi
		echo "--- $n: kubectl exec -n kube-system $pod -- ipvs-doctor $*"
		kubectl -n kube-system exec "$pod" -- ipvs-doctor "$@"
	done
}

progress 1 "kube-proxy pods"
pods
progress 2 "/healthz and /metrics from each node's host network"
endpoints
progress 3 "ipvs-doctor in each kube-proxy pod"
# Arguments go to ipvs-doctor; by default --kubeconfig /var/lib/kube-proxy/kubeconfig.conf
# (the kube-proxy ConfigMap's kubeconfig: the control-plane endpoint itself, with the pod's
# ServiceAccount token), as docs/kubeadm.md says. --in-cluster would reach the API server
# through the kubernetes Service, i.e. through the very IPVS rules ipvs-doctor checks.
[ $# -gt 0 ] || set -- --kubeconfig /var/lib/kube-proxy/kubeconfig.conf
doctor "$@"
step "check-proxy: done in $((SECONDS - START)) s"
