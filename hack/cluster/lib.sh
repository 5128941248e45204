# Settings shared by the hack/cluster scripts; source it, do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../controlplane/lib.sh"
CLUSTER_DIR="$ROOT/hack/cluster"
CLUSTER_OUT="$OUT/cluster"
CLUSTER_BIN="$CLUSTER_OUT/bin"
# The cluster's control plane runs apart from hack/controlplane's default one (e2e, tests);
# CLUSTER_CP_RUN may name another directory to run a second one (test-host.sh does).
CLUSTER_CP_RUN=${CLUSTER_CP_RUN:-$CLUSTER_OUT/controlplane}
# What the node VMs see: the API server at CLUSTER_GUEST_IP:<its host port>, forwarded by
# qemu's guestfwd to 127.0.0.1:<port>; the same address is advertised in the kubernetes
# Service's endpoints, so in-cluster clients reach it too.
CLUSTER_GUEST_IP=10.0.2.100
# Dual-stack, IPv4 first (kubeadm's order for an IPv4 advertise address).
CLUSTER_SERVICE_CIDR=10.96.0.0/16,fd00:10:96::/112
CLUSTER_POD_CIDR=10.244.0.0/16,fd00:10:244::/56
CLUSTER_NAME=kubernetes

# cert_kubeconfig writes kubeconfig $1 for server $2 as the client certificate $CP_PKI/$3.*
# (user name $3), like kubeadm's admin.conf, controller-manager.conf and scheduler.conf.
cert_kubeconfig() {
	local file=$1 server=$2 user=$3
	cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$CP_PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$CP_PKI/$user.crt")
    client-key-data: $(base64 -w0 <"$CP_PKI/$user.key")
contexts:
- name: $user@$CLUSTER_NAME
  context:
    cluster: $CLUSTER_NAME
    user: $user
current-context: $user@$CLUSTER_NAME
KUBECONFIG
	chmod 600 "$file"
}

# Images the cluster runs (hack/cluster/images.sh), by the names the pods use. The pause
# image carries kubeadm v1.37's sandbox name, so kubelet and containerd find it imported.
CLUSTER_IMAGES="$CLUSTER_OUT/images"
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
TEST_SERVER_IMAGE=ipvs-proxy/test-server:dev
# The same image under a second tag: scenario 1's `kubectl set image` rolls to it.
TEST_SERVER_IMAGE_V2=ipvs-proxy/test-server:v2
ROLLING_CLIENT_IMAGE=ipvs-proxy/rolling-client:dev
UPSTREAM_PROXY_IMAGE=registry.k8s.io/kube-proxy:$K8S_VERSION
OUR_PROXY_IMAGE=${IMAGE:-ipvs-proxy/kube-proxy:dev}
OUR_PROXY_TARBALL="$OUT/image/kube-proxy.oci.tar"

# addon_rollout runs addon.sh "$@" and restarts the kube-proxy DaemonSet, waiting for it on
# every node: kubeadm's addon phase rewrites the ConfigMap, but when only featureGates
# changed (same image) the DaemonSet's template is unchanged and its pods keep running
# with the old configuration; a user restarts them (kubectl rollout restart), and so do
# the scenario scripts between rows. Chained with &&: run left of || (scenario-swap.sh's
# rows) set -e does not hold, and each step's failure must still be the function's.
addon_rollout() {
	"$CLUSTER_DIR/addon.sh" "$@" &&
	"$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_CP_RUN/admin.conf" -n kube-system rollout restart ds/kube-proxy &&
	"$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_CP_RUN/admin.conf" -n kube-system rollout status ds/kube-proxy --timeout=600s
}

# kubectl as the cluster's admin (CLUSTER_ADMIN_KUBECONFIG: from $CLUSTER_CP_RUN/env).
kubectl() { "$CLUSTER_BIN/kubectl" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG" "$@"; }

# configmap_gate prints "on" when kube-system/kube-proxy's config.conf turns the
# IPVSImmediateTermination gate on, else "off" (read whole, then matched: a pipe into grep -q
# under pipefail could read kubectl's SIGPIPE as "off"); fails when kubectl does.
configmap_gate() {
	local conf
	conf=$(kubectl -n kube-system get configmap kube-proxy -o jsonpath='{.data.config\.conf}') || return 1
	if [[ "$conf" == *"IPVSImmediateTermination: true"* ]]; then echo on; else echo off; fi
}

# addon_way ROW prints addon.sh's arguments for a row of a scenario or a conformance run:
# gate-on (the kubeadm patch of docs/kubeadm.md), gate-off (the patch without the gate),
# upstream (kubeadm's addon as it comes: upstream's image).
addon_way() {
	case $1 in
	gate-on) echo patch ;;
	gate-off) echo "patch no-gate" ;;
	upstream) echo upstream ;;
	*) echo "$(basename "$0"): unknown row $1 (gate-on, gate-off, upstream)" >&2; return 1 ;;
	esac
}
