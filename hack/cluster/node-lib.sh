# Settings shared by the node scripts of hack/cluster (node-image.sh, node-up.sh,
# node-down.sh); source it, do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../controlplane/lib.sh"
source "$ROOT/hack/vm/lib.sh"
NODE_SRC="$ROOT/hack/cluster"
NODE_OUT="$OUT/cluster/node"
CLUSTER_BIN="$OUT/cluster/bin"
# Each node's run state (pid, logs, certificates) lives in $NODE_RUN/NAME.
NODE_RUN=${NODE_RUN:-$OUT/cluster/run}
# The lock every qemu of this project takes. Node VMs take it shared, so the nodes of one
# cluster run together while everyone else's VMs (exclusive: flock /tmp/ipvs-vm.lock) wait.
VM_LOCK=${VM_LOCK:-/tmp/ipvs-vm.lock}
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2 # kubeadm v1.37.2's constants.PauseVersion
NODE_MEMORY_MB=${NODE_MEMORY_MB:-2560}
NODE_CPUS=${NODE_CPUS:-2}

# The fixed per-node plan (node-a, node-b, ...): L2 address on the nodes' shared link (eth1)
# and pod CIDRs, IPv4 and IPv6. The Node objects are created with these podCIDRs.
node_index() {
	case $1 in
	node-a) echo 1 ;;
	node-b) echo 2 ;;
	node-c) echo 3 ;;
	*) echo "node: unknown node $1 (node-a, node-b or node-c)" >&2; return 1 ;;
	esac
}
node_l2_ipv4() { echo "192.168.100.$((10 + $(node_index "$1")))"; }
node_l2_ipv6() { echo "fd00:100::$((10 + $(node_index "$1")))"; }
node_pod_cidr4() { echo "10.244.$(node_index "$1").0/24"; }
node_pod_cidr6() { echo "fd00:10:244:$(node_index "$1")::/64"; }
node_mac() { printf '52:54:00:00:01:%02x' "$(node_index "$1")"; }
ALL_NODES="node-a node-b node-c"
