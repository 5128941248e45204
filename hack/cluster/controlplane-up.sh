#!/usr/bin/env bash
# Step 2 of the cluster (make cluster-host): the control plane on the host's loopback.
# etcd and kube-apiserver through hack/controlplane/up.sh (dual-stack service CIDRs, the
# kubernetes Service advertised at the VMs' address), then the real kube-controller-manager
# and kube-scheduler with flags close to kubeadm v1.37's static pods, each with its own
# client certificate and kubeconfig. State in _output/cluster/controlplane:
#   env                       hack/controlplane's CP_* plus CLUSTER_* (source it)
#   admin.conf                cluster-admin (client certificate, system:masters), for kubectl/kubeadm
#   kubeconfig-guest          for the VMs: https://10.0.2.100:<port> (qemu guestfwd to 127.0.0.1:<port>)
#   controller-manager.conf, scheduler.conf, *.log, pki/
# Overrides: CLUSTER_KCM_EXTRA_ARGS (e.g. "--node-monitor-grace-period=10s"),
# CLUSTER_SCHEDULER_EXTRA_ARGS, CP_APISERVER_PORT.
#   controlplane-up.sh --restart-controller-manager
# restarts kube-controller-manager of the running control plane (same port) with
# CLUSTER_KCM_EXTRA_ARGS, as editing kubeadm's static pod manifest does (scenario 2 runs
# with kubeadm's node-monitor-grace-period, then a short one).
source "$(dirname "$0")/lib.sh"
export CP_RUN=$CLUSTER_CP_RUN

# start_controller_manager runs kube-controller-manager as kubeadm's static pod does
# (bind 127.0.0.1, leader election, per-controller service-account credentials, the CA
# for CSR signing and kube-root-ca.crt, bootstrap-token controllers, node IPAM over the
# pod CIDRs), on a free secure port instead of 10257 so that it can run beside others.
start_controller_manager() {
	local conf="$CP_RUN/controller-manager.conf"
	start_daemon kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=true \
		--kubeconfig="$conf" --authentication-kubeconfig="$conf" --authorization-kubeconfig="$conf" \
		--client-ca-file="$CP_PKI/ca.crt" --requestheader-client-ca-file="$CP_PKI/front-proxy-ca.crt" \
		--root-ca-file="$CP_PKI/ca.crt" \
		--service-account-private-key-file="$CP_PKI/sa.key" \
		--cluster-signing-cert-file="$CP_PKI/ca.crt" --cluster-signing-key-file="$CP_PKI/ca.key" \
		--use-service-account-credentials=true --controllers='*,bootstrapsigner,tokencleaner' \
		--allocate-node-cidrs=true --cluster-cidr="$CLUSTER_POD_CIDR" \
		--service-cluster-ip-range="$CLUSTER_SERVICE_CIDR" --cluster-name="$CLUSTER_NAME" \
		${CLUSTER_KCM_EXTRA_ARGS:-}
	wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
}

# start_scheduler runs kube-scheduler as kubeadm's static pod does, on a free port instead of 10259.
start_scheduler() {
	local conf="$CP_RUN/scheduler.conf"
	start_daemon kube-scheduler "$CLUSTER_BIN/kube-scheduler" \
		--bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=true \
		--kubeconfig="$conf" --authentication-kubeconfig="$conf" --authorization-kubeconfig="$conf" \
		${CLUSTER_SCHEDULER_EXTRA_ARGS:-}
	wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

# client_identities issues kubeadm's client certificates and writes their kubeconfigs
# (kubeadm: admin.conf, controller-manager.conf, scheduler.conf; the user names RBAC's
# bootstrap policy binds).
client_identities() {
	local local_url="https://127.0.0.1:$CP_APISERVER_PORT" ext=("extendedKeyUsage=clientAuth" "keyUsage=digitalSignature,keyEncipherment")
	issue_cert admin "/O=system:masters/CN=kubernetes-admin" "${ext[@]}"
	issue_cert controller-manager "/CN=system:kube-controller-manager" "${ext[@]}"
	issue_cert scheduler "/CN=system:kube-scheduler" "${ext[@]}"
	cert_kubeconfig "$CP_RUN/admin.conf" "$local_url" admin
	cert_kubeconfig "$CP_RUN/controller-manager.conf" "$local_url" controller-manager
	cert_kubeconfig "$CP_RUN/scheduler.conf" "$local_url" scheduler
}

write_cluster_env() {
	cat >>"$CP_RUN/env" <<ENV
CLUSTER_ADMIN_KUBECONFIG=$CP_RUN/admin.conf
CLUSTER_GUEST_KUBECONFIG=$CP_RUN/kubeconfig-guest
CLUSTER_SERVICE_CIDR=$CLUSTER_SERVICE_CIDR
CLUSTER_POD_CIDR=$CLUSTER_POD_CIDR
CLUSTER_KCM_PORT=$KCM_PORT
CLUSTER_SCHEDULER_PORT=$SCHEDULER_PORT
CLUSTER_KCM_PID=$(cat "$CP_RUN/kube-controller-manager.pid")
CLUSTER_SCHEDULER_PID=$(cat "$CP_RUN/kube-scheduler.pid")
ENV
}

# restart_controller_manager stops kube-controller-manager and starts it again with
# CLUSTER_KCM_EXTRA_ARGS; the new one takes the leader lease once the old one's expires.
restart_controller_manager() {
	[ -f "$CP_RUN/env" ] || { echo "cluster: no control plane ($CP_RUN/env)" >&2; return 1; }
	source "$CP_RUN/env"
	KCM_PORT=$CLUSTER_KCM_PORT
	step "cluster: restarting kube-controller-manager (127.0.0.1:$KCM_PORT) with: ${CLUSTER_KCM_EXTRA_ARGS:-no extra flags}"
	stop_daemon kube-controller-manager "$CLUSTER_BIN"
	start_controller_manager
	sed -i "s/^CLUSTER_KCM_PID=.*/CLUSTER_KCM_PID=$(cat "$CP_RUN/kube-controller-manager.pid")/" "$CP_RUN/env"
}

main() {
	if [ "${1:-}" = --restart-controller-manager ]; then
		restart_controller_manager
		return
	fi
	if [ -f "$CP_RUN/env" ]; then
		echo "cluster: control plane already up ($CP_RUN/env); run hack/cluster/controlplane-down.sh first" >&2
		return 1
	fi
	"$CLUSTER_DIR/build.sh"
	local start=$SECONDS port
	port=${CP_APISERVER_PORT:-$(free_port)}
	# The guest-side port equals the host port: the endpoint the API server advertises
	# (CLUSTER_GUEST_IP:secure port) is then the address qemu forwards.
	CP_APISERVER_PORT=$port CP_GUEST_ADDR="$CLUSTER_GUEST_IP:$port" CP_ADVERTISE_ADDRESS=$CLUSTER_GUEST_IP \
		CP_SERVICE_CIDR=$CLUSTER_SERVICE_CIDR CP_APISERVER_SANS="IP:fd00:10:96::1" "$CP_DIR/up.sh" >/dev/null
	trap '[ $? = 0 ] || "$CLUSTER_DIR/controlplane-down.sh" --keep-logs' EXIT
	source "$CP_RUN/env"
	step "cluster: etcd and kube-apiserver up on 127.0.0.1:$CP_APISERVER_PORT (guest $CP_GUEST_ADDR) in $((SECONDS - start)) s"
	client_identities
	KCM_PORT=$(free_port "$CP_APISERVER_PORT" "$CP_ETCD_PORT" "$CP_ETCD_PEER_PORT")
	SCHEDULER_PORT=$(free_port "$CP_APISERVER_PORT" "$CP_ETCD_PORT" "$CP_ETCD_PEER_PORT" "$KCM_PORT")
	step "cluster: starting kube-controller-manager (127.0.0.1:$KCM_PORT, pod CIDRs $CLUSTER_POD_CIDR)"
	start_controller_manager
	step "cluster: starting kube-scheduler (127.0.0.1:$SCHEDULER_PORT)"
	start_scheduler
	write_cluster_env
	step "cluster: control plane up in $((SECONDS - start)) s; source $CP_RUN/env"
}

main "$@"
