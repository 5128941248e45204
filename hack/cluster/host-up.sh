#!/usr/bin/env bash
# The host half of the cluster (make cluster-host), steps 1-4 in order: build (cached), the
# images (OCI tarballs for the nodes to import), the control plane on loopback, and
# kubeadm's kube-proxy addon made the way CLUSTER_ADDON_WAY says (default "patch": way A of
# docs/kubeadm.md with the gate; "patch no-gate"; "upstream"). It stays up for the nodes:
# source _output/cluster/controlplane/env; hack/cluster/controlplane-down.sh stops it.
# CLUSTER_SKIP_MAKE_IMAGE=1 reuses an existing make image tarball.
source "$(dirname "$0")/lib.sh"
start=$SECONDS
"$CLUSTER_DIR/build.sh"
"$CLUSTER_DIR/images.sh"
"$CLUSTER_DIR/controlplane-up.sh"
# shellcheck disable=SC2086
"$CLUSTER_DIR/addon.sh" ${CLUSTER_ADDON_WAY:-patch}
step "cluster host half up in $((SECONDS - start)) s: source $CLUSTER_CP_RUN/env"
