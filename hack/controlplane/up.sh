#!/usr/bin/env bash
# Starts etcd and kube-apiserver on the host's loopback, on ports free at run time,
# and writes into _output/controlplane/run:
#   env              CP_* variables (ports, URLs, kubeconfig paths, token, pids); source it
#   kubeconfig       for the host:  https://127.0.0.1:<port>
#   kubeconfig-guest for a qemu guest: https://10.0.2.100:6443 (reached through guestfwd)
# Both kubeconfigs hold the CA and a bearer token of group system:masters.
# Overrides: CP_APISERVER_PORT, CP_ETCD_PORT, CP_ETCD_PEER_PORT, CP_GUEST_ADDR (host:port),
# CP_APISERVER_EXTRA_ARGS (more kube-apiserver flags, word-split).
source "$(dirname "$0")/lib.sh"
GUEST_ADDR=${CP_GUEST_ADDR:-10.0.2.100:6443}
SERVICE_CIDR=10.96.0.0/16

# port_free succeeds when nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a random free loopback port not among its arguments.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ " $* " == *" $p "* ]] && continue
		port_free "$p" && { echo "$p"; return; }
	done
}

# make_certs writes a CA, a serving certificate for the API server (loopback and the
# guest-side address), service-account keys and a token file into $CP_RUN/pki.
make_certs() {
	local pki="$CP_RUN/pki" guest_ip=${GUEST_ADDR%:*}
	mkdir -p "$pki"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ipvs-proxy-test-ca" \
		-keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
		-keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" 2>/dev/null
	printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:$guest_ip,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
		"extendedKeyUsage=serverAuth" "keyUsage=digitalSignature,keyEncipherment" >"$pki/apiserver.ext"
	openssl x509 -req -days 30 -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
	openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
	TOKEN=$(openssl rand -hex 24)
	echo "$TOKEN,admin,admin,\"system:masters\"" >"$pki/tokens.csv"
	chmod 600 "$pki"/*.key "$pki/tokens.csv"
}

# start_daemon runs "$@" detached in its own session, logging to $CP_RUN/$1.log, and
# records the pid of the binary itself in $CP_RUN/$1.pid.
start_daemon() {
	local name=$1
	shift
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$CP_RUN/$name.pid" "$@" \
		>"$CP_RUN/$name.log" 2>&1 </dev/null &
}

# wait_for polls "$@" until it succeeds; fails after $2 seconds or when daemon $1 died.
wait_for() {
	local name=$1 timeout=$2 pid i
	shift 2
	for ((i = 0; i < timeout * 10; i++)); do
		"$@" >/dev/null 2>&1 && return
		pid=$(cat "$CP_RUN/$name.pid" 2>/dev/null || true)
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$CP_RUN/$name.log" >&2
			echo "controlplane: $name exited during startup, log: $CP_RUN/$name.log" >&2
			return 1
		fi
		sleep 0.1
	done
	tail -n 30 "$CP_RUN/$name.log" >&2
	echo "controlplane: $name not ready after ${timeout}s, log: $CP_RUN/$name.log" >&2
	return 1
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
	local pki="$CP_RUN/pki"
	start_daemon kube-apiserver "$CP_BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
		--advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
		--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--service-account-issuer=https://kubernetes.default.svc \
		--service-account-key-file="$pki/sa.pub" \
		--service-account-signing-key-file="$pki/sa.key" \
		--token-auth-file="$pki/tokens.csv" \
		--authorization-mode=RBAC --profiling=false --allow-privileged=true \
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
