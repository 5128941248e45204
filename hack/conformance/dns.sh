#!/usr/bin/env bash
# Step 3 of make conformance (after make cluster's addon.sh): cluster DNS, as kubeadm init
# makes it: `kubeadm init phase addon coredns` with the cluster's kubeadm configuration
# (_output/cluster/controlplane/addon/kubeadm.yaml, written by hack/cluster/addon.sh) against
# the running control plane. It creates the coredns ConfigMap, Deployment (2 replicas,
# registry.k8s.io/coredns/coredns:v1.14.6: hack/conformance/images.sh's, imported on the nodes)
# and RBAC, and the kube-dns Service at the 10th address of the service CIDR (10.96.0.10, the
# kubelets' clusterDNS). Then waits for the Deployment (DNS_ROLLOUT_TIMEOUT, default 300s).
# The Service tests resolve Service names (nc/curl to NAME:PORT); CoreDNS reaches the API
# server through the kubernetes Service, i.e. through the kube-proxy under test.
# CoreDNS's pods have dnsPolicy Default: its forward plugin needs a nameserver line in the
# nodes' /etc/resolv.conf (any address: only cluster.local names are asked).
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC1091
source "$CLUSTER_CP_RUN/env"
config="$CLUSTER_CP_RUN/addon/kubeadm.yaml"
[ -f "$config" ] || { echo "dns: no $config: run make cluster (hack/cluster/addon.sh) first" >&2; exit 1; }
step "dns [1/2]: kubeadm init phase addon coredns --config $config"
"$CLUSTER_BIN/kubeadm" init phase addon coredns --config "$config" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG"
kubectl -n kube-system get service kube-dns -o wide
if [ "${DNS_NO_WAIT:-}" = 1 ]; then
	exit 0
fi
step "dns [2/2]: waiting for deployment/coredns"
kubectl -n kube-system rollout status deployment/coredns --timeout="${DNS_ROLLOUT_TIMEOUT:-300s}"
