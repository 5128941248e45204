#!/usr/bin/env bash
# Step 4 of the cluster (make cluster-host): the kube-proxy addon made by the real kubeadm
# against the host control plane (hack/cluster/controlplane-up.sh), and the image swap as
# docs/kubeadm.md tells users. One way per run:
#   addon.sh patch [no-gate]
#                       way A: the kubeadm configuration with the gate (without: no-gate), and
#                       patches.directory holding deploy/kubeadm-patches with its image: set to ours
#   addon.sh upstream   a stock kubeadm addon: the configuration without the gate, no patches
#                       (upstream's image; what way C starts from)
#   addon.sh overlay    way C: deploy/kubeadm-overlay with newName/newTag set to ours, applied
#                       with kubectl apply -k --server-side (onto what "upstream" made)
#   addon.sh gate-on    way C's last step: featureGates added to the kube-proxy ConfigMap's
#                       config.conf with kubectl edit (a scripted editor), then rollout restart
#   addon.sh restart    rollout restart alone, nothing changed (scenario 3's control row: the
#                       same pod restarts on the nodes as a swap, with upstream's image)
# "patch" and "upstream" run `kubeadm init phase upload-config kubeadm` first, as kubeadm
# init does, then `kubeadm init phase addon kube-proxy --config FILE --kubeconfig admin.conf`.
# Files (the kubeadm configuration, the patch and overlay copies) in the control plane's
# directory: _output/cluster/controlplane/addon.
# IMAGE (default ipvs-proxy/kube-proxy:dev) is our image's reference.
source "$(dirname "$0")/lib.sh"
export CP_RUN=$CLUSTER_CP_RUN
ADDON_OUT="$CP_RUN/addon"
# rollout status waits for the DaemonSet's pods on every node (none without nodes).
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-300s}

kubeadm() { "$CLUSTER_BIN/kubeadm" "$@"; }

# kubeadm_config writes the configuration a user would write for this cluster (docs/kubeadm.md
# section 3A): $1 = "gate" adds the feature gate, $2 = a patches directory or "".
kubeadm_config() {
	local gate=$1 patches=$2 file="$ADDON_OUT/kubeadm.yaml"
	cat >"$file" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $CLUSTER_GUEST_IP
  bindPort: $CP_APISERVER_PORT
nodeRegistration:
  criSocket: unix:///run/containerd/containerd.sock
YAML
	[ -z "$patches" ] || printf 'patches:\n  directory: %s\n' "$patches" >>"$file"
	cat >>"$file" <<YAML
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $K8S_VERSION
clusterName: $CLUSTER_NAME
controlPlaneEndpoint: $CLUSTER_GUEST_IP:$CP_APISERVER_PORT
networking:
  serviceSubnet: $CLUSTER_SERVICE_CIDR
  podSubnet: $CLUSTER_POD_CIDR
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clusterCIDR: $CLUSTER_POD_CIDR
YAML
	[ "$gate" != gate ] || printf 'featureGates:\n  IPVSImmediateTermination: true\n' >>"$file"
	echo "$file"
}

# run_kubeadm uploads the configuration (kubeadm-config, as kubeadm init does) and renders the addon.
run_kubeadm() {
	local config=$1
	step "addon: kubeadm init phase upload-config kubeadm --config $config"
	kubeadm init phase upload-config kubeadm --config "$config" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG"
	step "addon: kubeadm init phase addon kube-proxy --config $config"
	kubeadm init phase addon kube-proxy --config "$config" --kubeconfig "$CLUSTER_ADMIN_KUBECONFIG"
}

# way_patch: docs/kubeadm.md 3A. A copy of deploy/kubeadm-patches with its image: edited;
# $1 = "no-gate" leaves the gate out of the configuration (ours with the gate off).
way_patch() {
	local dir="$ADDON_OUT/patches" gate=gate
	[ "${1:-}" != no-gate ] || gate=no-gate
	rm -rf "$dir" && cp -r "$ROOT/deploy/kubeadm-patches" "$dir"
	sed -i "s|^\(\s*image:\).*|\1 $OUR_PROXY_IMAGE|" "$dir/kubeproxydaemonset+strategic.yaml"
	run_kubeadm "$(kubeadm_config "$gate" "$dir")"
}

way_upstream() {
	run_kubeadm "$(kubeadm_config no-gate "")"
}

# way_overlay: docs/kubeadm.md 3C's first block, on a copy of deploy/kubeadm-overlay.
way_overlay() {
	local dir="$ADDON_OUT/kubeadm-overlay"
	rm -rf "$dir" && cp -r "$ROOT/deploy/kubeadm-overlay" "$dir"
	sed -i -e "s|^\(\s*newName:\).*|\1 ${OUR_PROXY_IMAGE%:*}|" -e "s|^\(\s*newTag:\).*|\1 ${OUR_PROXY_IMAGE##*:}|" \
		"$dir/kustomization.yaml"
	step "addon: kubectl apply -k $dir --server-side --force-conflicts --field-manager=ipvs-proxy"
	kubectl apply -k "$dir" --server-side --force-conflicts --field-manager=ipvs-proxy
	kubectl -n kube-system rollout status ds/kube-proxy --timeout="$ROLLOUT_TIMEOUT"
}

# way_gate_on: docs/kubeadm.md 3C's second block. The editor adds section 2's featureGates
# under config.conf's top level, indented as kubeadm renders it.
way_gate_on() {
	local editor="$ADDON_OUT/add-gate.sh"
	cat >"$editor" <<'EDITOR'
#!/bin/sh
# kubectl edit's editor: after config.conf's "mode: ipvs" line, the feature gate at the same indent.
grep -q 'IPVSImmediateTermination' "$1" && exit 0
sed -i 's|^\( *\)mode: ipvs$|&\n\1featureGates:\n\1  IPVSImmediateTermination: true|' "$1"
EDITOR
	chmod +x "$editor"
	step "addon: kubectl -n kube-system edit configmap kube-proxy (featureGates: IPVSImmediateTermination: true)"
	KUBE_EDITOR=$editor kubectl -n kube-system edit configmap kube-proxy
	local gate
	gate=$(configmap_gate)
	[ "$gate" = on ] ||
		{ echo "addon: the gate is not in configmap kube-system/kube-proxy after the edit" >&2; return 1; }
	kubectl -n kube-system rollout restart ds/kube-proxy
	kubectl -n kube-system rollout status ds/kube-proxy --timeout="$ROLLOUT_TIMEOUT"
}

# way_restart restarts the DaemonSet's pods with what they run.
way_restart() {
	step "addon: kubectl -n kube-system rollout restart ds/kube-proxy"
	kubectl -n kube-system rollout restart ds/kube-proxy
	kubectl -n kube-system rollout status ds/kube-proxy --timeout="$ROLLOUT_TIMEOUT"
}

main() {
	[ -f "$CP_RUN/env" ] || { echo "addon: no control plane ($CP_RUN/env); run hack/cluster/controlplane-up.sh" >&2; return 1; }
	source "$CP_RUN/env"
	mkdir -p "$ADDON_OUT"
	case ${1:-} in
	patch) way_patch "${2:-}" ;;
	upstream) way_upstream ;;
	overlay) way_overlay ;;
	gate-on) way_gate_on ;;
	restart) way_restart ;;
	*) echo "usage: $0 patch [no-gate]|upstream|overlay|gate-on|restart" >&2; return 2 ;;
	esac
	step "addon: kube-system/kube-proxy image $(kubectl -n kube-system get ds kube-proxy -o jsonpath='{.spec.template.spec.containers[0].image}')"
}

main "$@"
