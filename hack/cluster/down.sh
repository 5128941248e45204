#!/usr/bin/env bash
# make cluster-down: stops what hack/cluster/up.sh started, in reverse: the node VMs (their
# Nodes deleted), the control plane, node-proxy. Safe to run when parts are already down.
source "$(dirname "$0")/lib.sh"
export CP_RUN=$CLUSTER_CP_RUN
NODES=${CLUSTER_NODES:-node-a node-b}
START=$SECONDS
step "cluster down [1/3] node VMs: $NODES"
# shellcheck disable=SC2086
"$CLUSTER_DIR/node-down.sh" --delete $NODES
step "cluster down [2/3] control plane"
[ ! -f "$CP_RUN/env" ] || "$CLUSTER_DIR/controlplane-down.sh"
step "cluster down [3/3] node-proxy"
"$CLUSTER_DIR/node-proxy.sh" down
step "cluster down in $((SECONDS - START)) s"
