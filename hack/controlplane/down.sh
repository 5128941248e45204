#!/usr/bin/env bash
# Stops the kube-apiserver and etcd that up.sh started and removes their run state
# (_output/controlplane/run). --keep-logs keeps the run directory.
source "$(dirname "$0")/lib.sh"
step "stopping kube-apiserver and etcd"
stop_daemon kube-apiserver
stop_daemon etcd
if [ "${1:-}" = --keep-logs ]; then
	rm -f "$CP_RUN/env"
	echo "kept $CP_RUN"
else
	rm -rf "$CP_RUN"
fi
