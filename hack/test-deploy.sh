#!/usr/bin/env bash
# Validates deploy/ against a real kube-apiserver (hack/controlplane, v1.37.2 on loopback):
# server-side dry-run with strict field validation of the kustomization in deploy/, the
# kubeadm overlay (server-side apply onto a kubeadm-like kube-proxy DaemonSet) and the
# kubeadm patch (strategic merge); the ConfigMap's KubeProxyConfiguration through our
# kube-proxy (--write-config-to) and upstream's (which must refuse the feature gate).
# Runs a control plane of its own (CP_RUN=_output/deploy-test/controlplane), beside any other.
export CP_RUN="$(cd "$(dirname "$0")/.." && pwd)/_output/deploy-test/controlplane"
source "$(dirname "$0")/controlplane/lib.sh"
cd "$ROOT"
# One left by an interrupted run is stopped first.
[ ! -f "$CP_RUN/env" ] || "$CP_DIR/down.sh" >/dev/null
trap '"$CP_DIR/down.sh" >/dev/null' EXIT
"$CP_DIR/up.sh" >/dev/null
source "$CP_RUN/env"
step "deploy: building kube-proxy"
go build -trimpath -o "$OUT/bin/kube-proxy" ./cmd/kube-proxy
step "deploy: manifest tests against $CP_APISERVER_URL"
cd "$ROOT/hack/image"
CP_KUBECONFIG="$CP_KUBECONFIG" KUBE_PROXY_BIN="$OUT/bin/kube-proxy" UPSTREAM_KUBE_PROXY_BIN="$CP_BIN/kube-proxy-upstream" \
	GOFLAGS=-mod=readonly go test -count=1 "$@" ./deploytest
