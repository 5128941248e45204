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
NODE_MEMORY_MB=${NODE_MEMORY_MB:-2048} # a node with test pods uses about 420 MiB
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

# The API server reaches kubelets (logs, exec, node proxy) through node-proxy.sh's CONNECT
# proxy: each node VM forwards a host loopback port to its kubelet, listed in KUBELET_ROUTES.
KUBELET_ROUTES="$NODE_RUN/kubelet-routes"
NODE_PROXY_SOCKET="$NODE_RUN/node-proxy.sock"
EGRESS_CONFIG="$NODE_RUN/egress-selector.yaml"

# node_free_port prints a free loopback port (below the ephemeral range).
node_free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "$p"; return; }
	done
}

# set_kubelet_route replaces node $1's lines in KUBELET_ROUTES with its addresses -> port $2
# (no port: removes them).
set_kubelet_route() {
	local name=$1 port=${2:-} v4 v6
	v4=$(node_l2_ipv4 "$name") v6=$(node_l2_ipv6 "$name")
	mkdir -p "$NODE_RUN"
	touch "$KUBELET_ROUTES"
	grep -v -e "^$v4:" -e "^\[$v6\]:" -e "^$name:" "$KUBELET_ROUTES" >"$KUBELET_ROUTES.tmp" || true
	# By address (--kubelet-preferred-address-types=InternalIP,...) and by the Hostname address
	# (the API server's default preference).
	[ -z "$port" ] || printf '%s:10250 127.0.0.1:%s\n' "$v4" "$port" "[$v6]" "$port" "$name" "$port" >>"$KUBELET_ROUTES.tmp"
	mv "$KUBELET_ROUTES.tmp" "$KUBELET_ROUTES"
}
