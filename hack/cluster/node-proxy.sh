#!/usr/bin/env bash
# Step 3 (before the control plane starts) of the node side of `make cluster`: the path from
# the host's kube-apiserver to the node VMs' kubelets (kubectl logs/exec, nodes/proxy). The
# nodes' addresses are on the VMs' own L2 link, which the host cannot route to, so the API
# server sends its node traffic (egress "cluster") to an HTTP CONNECT proxy on a unix socket
# (test/cluster/cmd/node-proxy), which connects each node's address to the loopback port that
# node's qemu forwards to its kubelet (node-up.sh lists them in _output/cluster/run/kubelet-routes).
#   hack/cluster/node-proxy.sh up     # build, start; prints the kube-apiserver flag
#   hack/cluster/node-proxy.sh down
# Start kube-apiserver with CP_APISERVER_EXTRA_ARGS="<the printed flag>".
source "$(dirname "$0")/node-lib.sh"
cd "$ROOT"
PID_FILE="$NODE_RUN/node-proxy.pid"

up() {
	mkdir -p "$NODE_RUN" "$NODE_OUT/bin"
	case $NODE_PROXY_SOCKET in *[\ ,]*) echo "node-proxy: path $NODE_PROXY_SOCKET must not contain spaces or commas" >&2; return 1 ;; esac
	(source "$ROOT/hack/lib.sh" && go build -trimpath -o "$NODE_OUT/bin/node-proxy" ./test/cluster/cmd/node-proxy)
	down >/dev/null
	touch "$KUBELET_ROUTES"
	cat >"$EGRESS_CONFIG" <<YAML
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: $NODE_PROXY_SOCKET
YAML
	setsid "$NODE_OUT/bin/node-proxy" -socket "$NODE_PROXY_SOCKET" -routes "$KUBELET_ROUTES" \
		>"$NODE_RUN/node-proxy.log" 2>&1 </dev/null &
	echo $! >"$PID_FILE"
	local i
	for ((i = 0; i < 50; i++)); do [ -S "$NODE_PROXY_SOCKET" ] && break; sleep 0.1; done
	[ -S "$NODE_PROXY_SOCKET" ] || { cat "$NODE_RUN/node-proxy.log" >&2; echo "node-proxy: did not start" >&2; return 1; }
	step "node-proxy: up (pid $(cat "$PID_FILE")); kube-apiserver flag:"
	# hack/controlplane/up.sh also sets --kubelet-preferred-address-types=InternalIP,...: with
	# the default (Hostname first) the nodes/proxy subresource resolves the node's name with the
	# host's DNS, and fails, before it dials.
	echo "--egress-selector-config-file=$EGRESS_CONFIG"
}

down() {
	local pid
	pid=$(cat "$PID_FILE" 2>/dev/null) || return 0
	[[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$NODE_OUT/bin/node-proxy"* ]] && kill "$pid" 2>/dev/null
	rm -f "$PID_FILE" "$NODE_PROXY_SOCKET"
	echo "node-proxy: stopped"
}

case ${1:-} in
up) up ;;
down) down ;;
*) echo "usage: hack/cluster/node-proxy.sh up|down" >&2; exit 2 ;;
esac
