#!/usr/bin/env bash
# Step 2 of the cluster, undone: stops kube-scheduler and kube-controller-manager, then etcd
# and kube-apiserver (hack/controlplane/down.sh), and removes _output/cluster/controlplane
# (--keep-logs keeps it).
source "$(dirname "$0")/lib.sh"
export CP_RUN=$CLUSTER_CP_RUN
step "cluster: stopping kube-scheduler and kube-controller-manager"
stop_daemon kube-scheduler "$CLUSTER_BIN"
stop_daemon kube-controller-manager "$CLUSTER_BIN"
"$CP_DIR/down.sh" "$@"
