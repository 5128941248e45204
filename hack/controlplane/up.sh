#!/usr/bin/env bash
# Starts etcd and kube-apiserver on the host's loopback, on ports free at run time,
# and writes into _output/controlplane/run:
#   env              CP_* variables (ports, URLs, kubeconfig paths, token, pids); source it
#   kubeconfig       for the host:  https://127.0.0.1:<port>
#   kubeconfig-guest for a qemu guest: https://10.0.2.100:6443 (reached through guestfwd)
# Both kubeconfigs hold the CA and a bearer token of group system:masters.
# Overrides: CP_APISERVER_PORT, CP_ETCD_PORT, CP_ETCD_PEER_PORT, CP_GUEST_ADDR (host:port),
# CP_SERVICE_CIDR, CP_ADVERTISE_ADDRESS, CP_APISERVER_SANS (extra subjectAltName entries),
# CP_APISERVER_EXTRA_ARGS (more kube-apiserver flags, word-split).
source "$(dirname "$0")/lib.sh"
GUEST_ADDR=${CP_GUEST_ADDR:-10.0.2.100:6443}
# Comma-separated, IPv4 first (dual-stack: "10.96.0.0/16,fd00:10:96::/112").
SERVICE_CIDR=${CP_SERVICE_CIDR:-10.96.0.0/16}
# The address written into the kubernetes Service's endpoints. Loopback (the default) has
# no reconciler (the API server refuses to advertise loopback otherwise); any other address
# gets kubeadm's lease reconciler, with the secure port as the endpoint port.
ADVERTISE_ADDRESS=${CP_ADVERTISE_ADDRESS:-127.0.0.1}

# make_certs writes a CA, a serving certificate for the API server (loopback, the guest-side
# address, 10.96.0.1 and $CP_APISERVER_SANS), its client certificate for kubelets, service-account keys and a token file into $CP_RUN/pki.
make_certs() {
	local pki="$CP_RUN/pki" guest_ip=${GUEST_ADDR%:*}
	mkdir -p "$pki"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ipvs-proxy-test-ca" \
		-keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
	issue_cert apiserver "/CN=kube-apiserver" \
		"subjectAltName=IP:127.0.0.1,IP:$guest_ip,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc${CP_APISERVER_SANS:+,$CP_APISERVER_SANS}" \
		"extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment"
	# kubeadm's apiserver-kubelet-client (for logs/exec through kubelets); system:masters as
	# before kubeadm 1.29 (kubeadm:cluster-admins needs a binding kubeadm init makes).
	issue_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
		"extendedKeyUsage=clientAuth" "keyUsage=digitalSignature,keyEncipherment"
	front_proxy_certs
	openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	TOKEN=$(openssl rand -hex 24)
	echo "$TOKEN,admin,admin,\"system:masters\"" >"$pki/tokens.csv"
	chmod 600 "$pki"/*.key "$pki/tokens.csv"
}

# front_proxy_certs writes kubeadm's front-proxy CA and the API server's front-proxy client
# certificate: controllers and schedulers read the CA from the extension-apiserver-
# authentication ConfigMap and log errors about the request-header CA without it.
front_proxy_certs() {
	local pki="$CP_RUN/pki"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=front-proxy-ca" \
		-keyout "$pki/front-proxy-ca.key" -out "$pki/front-proxy-ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=front-proxy-client" \
		-keyout "$pki/front-proxy-client.key" -out "$pki/front-proxy-client.csr" 2>/dev/null
	printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=digitalSignature,keyEncipherment" >"$pki/front-proxy-client.ext"
	openssl x509 -req -days 30 -in "$pki/front-proxy-client.csr" -CA "$pki/front-proxy-ca.crt" \
		-CAkey "$pki/front-proxy-ca.key" -CAcreateserial -extfile "$pki/front-proxy-client.ext" \
		-out "$pki/front-proxy-client.crt" 2>/dev/null
}

start_etcd() {
	start_daemon etcd "$CP_BIN/etcd" --name=cp --data-dir="$CP_RUN/etcd" \
		--listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster="cp=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync --log-level=warn
	wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
	local pki="$CP_RUN/pki" reconciler=lease
	[[ "$ADVERTISE_ADDRESS" != 127.* ]] || reconciler=none
	start_daemon kube-apiserver "$CP_BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
		--advertise-address="$ADVERTISE_ADDRESS" --endpoint-reconciler-type="$reconciler" \
		--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-account-key-file="$pki/sa.pub" \
		--service-account-signing-key-file="$pki/sa.key" \
		--token-auth-file="$pki/tokens.csv" \
		--kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$pki/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
		--enable-bootstrap-token-auth=true --enable-admission-plugins=NodeRestriction \
		--requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
		--authorization-mode=Node,RBAC --profiling=false --allow-privileged=true \
		${CP_APISERVER_EXTRA_ARGS:-}
	wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" \
		-H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$APISERVER_PORT/readyz"
}

# write_kubeconfig writes kubeconfig $1 for server URL $2.
write_kubeconfig() {
	local ca
	ca=$(base64 -w0 <"$CP_RUN/pki/ca.crt")
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ipvs-proxy-test
  cluster:
    server: $2
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: ipvs-proxy-test
  context:
    cluster: ipvs-proxy-test
    user: admin
current-context: ipvs-proxy-test
EOF
	chmod 600 "$1"
}

write_env() {
	cat >"$CP_RUN/env" <<EOF
CP_APISERVER_PORT=$APISERVER_PORT
CP_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
CP_ETCD_PORT=$ETCD_PORT
CP_ETCD_PEER_PORT=$ETCD_PEER_PORT
CP_GUEST_ADDR=$GUEST_ADDR
CP_KUBECONFIG=$CP_RUN/kubeconfig
CP_GUEST_KUBECONFIG=$CP_RUN/kubeconfig-guest
CP_CA=$CP_RUN/pki/ca.crt
CP_PKI=$CP_RUN/pki
CP_TOKEN=$TOKEN
CP_SERVICE_CIDR=$SERVICE_CIDR
CP_ETCD_PID=$(cat "$CP_RUN/etcd.pid")
CP_APISERVER_PID=$(cat "$CP_RUN/kube-apiserver.pid")
EOF
}

main() {
	if [ -f "$CP_RUN/env" ]; then
		echo "controlplane: already up ($CP_RUN/env); run hack/controlplane/down.sh first" >&2
		return 1
	fi
	"$CP_DIR/build.sh"
	need_cmd openssl openssl
	need_cmd curl curl
	rm -rf "$CP_RUN" && mkdir -p "$CP_RUN"
	# On failure stop what started but keep the logs for a look.
	trap '[ $? = 0 ] || "$CP_DIR/down.sh" --keep-logs' EXIT
	ETCD_PORT=${CP_ETCD_PORT:-$(free_port)}
	ETCD_PEER_PORT=${CP_ETCD_PEER_PORT:-$(free_port "$ETCD_PORT")}
	APISERVER_PORT=${CP_APISERVER_PORT:-$(free_port "$ETCD_PORT" "$ETCD_PEER_PORT")}
	step "generating CA, serving certificate (127.0.0.1, ${GUEST_ADDR%:*}), service-account keys, token"
	make_certs
	local start=$SECONDS
	step "starting etcd on 127.0.0.1:$ETCD_PORT (peer $ETCD_PEER_PORT)"
	start_etcd
	step "etcd healthy after $((SECONDS - start)) s; starting kube-apiserver on 127.0.0.1:$APISERVER_PORT"
	start=$SECONDS
	start_apiserver
	step "kube-apiserver ready after $((SECONDS - start)) s"
	write_kubeconfig "$CP_RUN/kubeconfig" "https://127.0.0.1:$APISERVER_PORT"
	write_kubeconfig "$CP_RUN/kubeconfig-guest" "https://$GUEST_ADDR"
	write_env
	cat "$CP_RUN/env"
}

main "$@"
