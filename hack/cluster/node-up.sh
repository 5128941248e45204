#!/usr/bin/env bash
# Step 3 of the node side of `make cluster`: boots node VM NAME (node-a, node-b, node-c) in the
# background and, with --wait, waits for its Node to be Ready.
#   hack/cluster/node-up.sh [--wait] NAME
# Needs the control plane up (hack/controlplane/up.sh; its run/env). Creates in the API server
# the Node NAME with its fixed pod CIDRs (node-lib.sh's plan), so the
# kubelet registers into a Node whose spec.podCIDRs match the CNI config. The kubelet
# authenticates with a client certificate for system:node:NAME signed by the control plane's CA.
# The VM: hack/vm's base + node-image.sh's cpio, qemu user networking (eth0: 10.0.2.100:6443 is
# the API server through guestfwd) and the nodes' shared L2 (eth1: qemu socket netdev on a
# loopback multicast group, CLUSTER_L2_MCAST). It runs under a shared flock on /tmp/ipvs-vm.lock:
# a cluster's nodes run together, everyone else's VMs wait for them. Stop it with node-down.sh.
# The kubelet's port 10250 is forwarded from a host loopback port, listed for node-proxy.sh.
# Environment: NODE_MEMORY_MB (2048), NODE_CPUS (2), NODE_TIMEOUT (seconds, 3600), KUBELET_V (2),
#   NODE_READY_TIMEOUT (600 s from the boot), NODE_LOCK_TIMEOUT (3600 s waiting for the VM lock),
#   NODE_IPV6 (1: dual-stack pods and node addresses; 0: IPv4 only), CLUSTER_L2_MCAST
#   (230.0.0.1:23456), NODE_IMAGES (more directories of image tarballs to import),
#   CP_RUN (the control plane's run directory, default _output/controlplane/run),
#   CLUSTER_PROFILE (stock: Debian 6.1's ip_vs; legacy: make demo's legacy profile, the
#   ip_vs modules of hack/legacy-ipvs, pre-5.9 reuse handling, appended to the initramfs in
#   place of the stock ones, and conn_reuse_mode=0 set at boot as kube-proxy does on kernels
#   older than 5.9; node-start checks the loaded ip_vs and logs what it found).
source "$(dirname "$0")/node-lib.sh"
cd "$ROOT"
STEPS=4
START=$SECONDS
progress() { step "node-up $NAME [$1/$STEPS] $2 ($((SECONDS - START)) s so far)"; }
L2_MCAST=${CLUSTER_L2_MCAST:-230.0.0.1:23456}

# api calls the host's API server as admin: api METHOD PATH [JSON]; prints the body, fails
# on HTTP errors other than 409 (AlreadyExists).
api() {
	local code body
	body=$(mktemp)
	code=$(curl -sS -o "$body" -w '%{http_code}' --cacert "$CP_CA" -H "Authorization: Bearer $CP_TOKEN" \
		-A node-up -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "$CP_APISERVER_URL$2")
	cat "$body"
	rm -f "$body"
	[[ $code == 2* || $code == 409 ]] || { echo >&2; echo "node-up: $1 $2: HTTP $code" >&2; return 1; }
}

# node_credentials writes the node's key, certificate (system:node:NAME, group system:nodes)
# and kubeconfig into $DIR/guest.
node_credentials() {
	local g=$DIR/guest pki="$CP_RUN/pki"
	mkdir -p "$g"
	openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NAME" \
		-keyout "$DIR/kubelet.key" -out "$DIR/kubelet.csr" 2>/dev/null
	printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$DIR/kubelet.ext"
	openssl x509 -req -days 30 -in "$DIR/kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -extfile "$DIR/kubelet.ext" -out "$DIR/kubelet.crt" 2>/dev/null
	cp "$pki/ca.crt" "$g/ca.crt"
	cat >"$g/kubelet.conf" <<KC
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: https://$CP_GUEST_ADDR
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: system:node:$NAME
  user:
    client-certificate-data: $(base64 -w0 <"$DIR/kubelet.crt")
    client-key-data: $(base64 -w0 <"$DIR/kubelet.key")
contexts:
- name: node
  context: {cluster: cluster, user: "system:node:$NAME"}
current-context: node
KC
	chmod 600 "$g/kubelet.conf" "$DIR/kubelet.key"
}

# node_objects creates the Node with its pod CIDRs and, when the API server authorizes with
# RBAC alone (no Node authorizer), the binding of ClusterRole system:node to system:nodes.
node_objects() {
	tr '\0' '\n' <"/proc/$CP_APISERVER_PID/cmdline" | grep -q -- '--authorization-mode=.*Node' ||
		api POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
	 "metadata":{"name":"cluster-nodes"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:node"},
	 "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"system:nodes"}]}' >/dev/null
	local cidrs="\"$(node_pod_cidr4 "$NAME")\""
	[ "$IPV6" = 0 ] || cidrs+=",\"$(node_pod_cidr6 "$NAME")\""
	api POST /api/v1/nodes "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$NAME\"},
	 \"spec\":{\"podCIDR\":\"$(node_pod_cidr4 "$NAME")\",\"podCIDRs\":[$cidrs]}}" >/dev/null
}

# images gathers the image tarballs every node imports: node-image.sh's, hack/cluster/images.sh's
# (_output/cluster/images, when built) and NODE_IMAGES's.
images() {
	mkdir -p "$DIR/guest/images"
	local d
	for d in "$NODE_OUT/images" "$OUT/cluster/images" ${NODE_IMAGES:-}; do
		[ -d "$d" ] || continue
		compgen -G "$d/*.tar" >/dev/null && cp "$d"/*.tar "$DIR/guest/images/"
	done
}

# routes prints the other nodes' pod CIDRs through their L2 addresses ("cidr=via" words).
routes() {
	local n out=()
	for n in $ALL_NODES; do
		[ "$n" = "$NAME" ] && continue
		out+=("$(node_pod_cidr4 "$n")=$(node_l2_ipv4 "$n")")
		[ "$IPV6" = 0 ] || out+=("$(node_pod_cidr6 "$n")=$(node_l2_ipv6 "$n")")
	done
	echo "${out[*]}"
}

# profile_cpios prints the --extra-cpio arguments of CLUSTER_PROFILE: none for stock; for
# legacy, hack/legacy-ipvs's modules.cpio (built when missing, once for concurrent node-ups),
# after the node image so that its ip_vs*.ko replace the stock files.
profile_cpios() {
	case $PROFILE in
	stock) ;;
	legacy)
		flock "$OUT/.legacy-ipvs.lock" "$ROOT/hack/legacy-ipvs/build.sh" >&2
		echo --extra-cpio "$OUT/legacy-ipvs/$(vm_kernel_version)/modules.cpio"
		;;
	*) echo "node-up: CLUSTER_PROFILE=$PROFILE: stock or legacy" >&2; return 1 ;;
	esac
}

# boot starts the VM detached in its own session (so a terminal's signals do not reach it);
# node-down.sh stops its process tree.
boot() {
	local cpio=$1 fwd=$DIR/apiserver-forward.sh profile_args
	profile_args=$(profile_cpios)
	case $DIR in *[\ ,]*) echo "node-up: path $DIR must not contain spaces or commas (qemu options)" >&2; return 1 ;; esac
	printf '#!/bin/sh\nexec busybox nc 127.0.0.1 %s\n' "$CP_APISERVER_PORT" >"$fwd"
	chmod +x "$fwd"
	# hostfwd: the kubelet's port on host loopback, for node-proxy.sh (API server -> kubelet).
	KUBELET_PORT=$(node_free_port)
	local net="-netdev user,id=n0,restrict=on,guestfwd=tcp:$CP_GUEST_ADDR-cmd:$fwd,hostfwd=tcp:127.0.0.1:$KUBELET_PORT-:10250"
	net+=" -device virtio-net-pci,netdev=n0"
	net+=" -netdev socket,id=n1,mcast=$L2_MCAST,localaddr=127.0.0.1 -device virtio-net-pci,netdev=n1,mac=$(node_mac "$NAME")"
	local v6addr="" v6cidr=""
	[ "$IPV6" = 0 ] || { v6addr=$(node_l2_ipv6 "$NAME"); v6cidr=$(node_pod_cidr6 "$NAME"); }
	# shellcheck disable=SC2086 # profile_args: zero or two words
	setsid flock -s "$VM_LOCK" env VM_MEMORY_MB="$NODE_MEMORY_MB" VM_CPUS="$NODE_CPUS" \
		"$ROOT/hack/vm/run.sh" --extra-cpio "$cpio" $profile_args --dir "$DIR/guest:/node" \
		--env "NODE_NAME=$NAME" --env "NODE_PROFILE=$PROFILE" --env "NODE_L2_IPV4=$(node_l2_ipv4 "$NAME")" --env "NODE_L2_IPV6=$v6addr" \
		--env "NODE_POD_CIDR4=$(node_pod_cidr4 "$NAME")" --env "NODE_POD_CIDR6=$v6cidr" \
		--env "NODE_ROUTES=$(routes)" --env "KUBELET_V=${KUBELET_V:-2}" \
		--qemu "$net" --timeout "${NODE_TIMEOUT:-3600}" --log-dir "$DIR/vm" -- node-start \
		>"$DIR/node.log" 2>&1 </dev/null &
	echo $! >"$DIR/pid"
	set_kubelet_route "$NAME" "$KUBELET_PORT"
}

# node_ready succeeds when the Node's Ready condition is True.
node_ready() {
	api GET "/api/v1/nodes/$NAME" 2>/dev/null | grep -q '"type":"Ready","status":"True"'
}

# wait_ready waits for the VM to boot (run.sh's "vm: booting" line, printed once the VM lock is
# taken) and then for the Node to be Ready; prints both times.
wait_ready() {
	# Before the boot: as long as the VM lock may be held by others (NODE_LOCK_TIMEOUT, 3600 s).
	local deadline=$((SECONDS + ${NODE_LOCK_TIMEOUT:-3600})) t0=$SECONDS booted=""
	until node_ready; do
		if [ -z "$booted" ] && grep -q '^vm: booting' "$DIR/node.log" 2>/dev/null; then
			booted=$SECONDS
			deadline=$((SECONDS + ${NODE_READY_TIMEOUT:-600}))
			echo "node-up: $NAME: VM lock taken after $((booted - t0)) s; qemu booting"
		fi
		if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
			tail -n 40 "$DIR/node.log" >&2
			echo "node-up: the VM of $NAME stopped; log $DIR/node.log" >&2
			return 1
		fi
		[ $SECONDS -lt $deadline ] || { echo "node-up: $NAME not Ready by the deadline (NODE_LOCK_TIMEOUT, NODE_READY_TIMEOUT); log $DIR/node.log" >&2; return 1; }
		sleep 1
	done
	echo "node-up: $NAME: Node Ready $((SECONDS - ${booted:-$t0})) s after qemu started"
}

main() {
	local wait=""
	[ "${1:-}" = --wait ] && { wait=1; shift; }
	NAME=${1:?usage: hack/cluster/node-up.sh [--wait] NAME}
	node_index "$NAME" >/dev/null
	IPV6=${NODE_IPV6:-1}
	PROFILE=${CLUSTER_PROFILE:-stock}
	DIR=$NODE_RUN/$NAME
	[ -f "$CP_RUN/env" ] || { echo "node-up: no control plane ($CP_RUN/env): run hack/controlplane/up.sh" >&2; return 1; }
	source "$CP_RUN/env"
	if [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
		echo "node-up: $NAME already running (pid $(cat "$DIR/pid")); hack/cluster/node-down.sh $NAME first" >&2
		return 1
	fi
	progress 1 "node image"
	local cpio
	cpio=$("$NODE_SRC/node-image.sh")
	local cidrs
	cidrs=$(node_pod_cidr4 "$NAME")
	[ "$IPV6" = 0 ] || cidrs+=" $(node_pod_cidr6 "$NAME")"
	progress 2 "credentials and API objects (Node $NAME, pod CIDRs $cidrs)"
	rm -rf "$DIR" && mkdir -p "$DIR"
	node_credentials
	node_objects
	images
	progress 3 "booting the VM (${NODE_CPUS} CPUs, ${NODE_MEMORY_MB} MiB, $PROFILE ip_vs; log $DIR/node.log)"
	boot "$cpio"
	[ -n "$wait" ] || return 0
	progress 4 "waiting for Node $NAME to be Ready"
	wait_ready
}

main "$@"
