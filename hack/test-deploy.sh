#!/usr/bin/env bash
# Validates deploy/ against a real kube-apiserver (hack/controlplane, v1.37.2 on loopback):
# server-side dry-run with strict field validation of the kustomization in deploy/, the
# kubeadm overlay (server-side apply onto a kubeadm-like kube-proxy DaemonSet) and the
# kubeadm patch (strategic merge); the ConfigMap's KubeProxyConfiguration through our
# kube-proxy (--write-config-to) and upstream's (which must refuse the feature gate).
# Reuses a control plane that is already up (leaves it up); otherwise starts one and stops it.
source "$(dirname "$0")/controlplane/lib.sh"
cd "$ROOT"
if [ -f "$CP_RUN/env" ] && (source "$CP_RUN/env" && kill -0 "$CP_APISERVER_PID" 2>/dev/null); then
	step "deploy: reusing the control plane in $CP_RUN"
else
	trap '"$CP_DIR/down.sh" >/dev/null' EXIT
	"$CP_DIR/up.sh" >/dev/null
fi
source "$CP_RUN/env"
step "deploy: building kube-proxy"
go build -trimpath -o "$OUT/bin/kube-proxy" ./cmd/kube-proxy
step "deploy: manifest tests against $CP_APISERVER_URL"
cd "$ROOT/hack/image"
CP_KUBECONFIG="$CP_KUBECONFIG" KUBE_PROXY_BIN="$OUT/bin/kube-proxy" UPSTREAM_KUBE_PROXY_BIN="$CP_BIN/kube-proxy-upstream" \
	GOFLAGS=-mod=readonly go test -count=1 "$@" ./deploytest
