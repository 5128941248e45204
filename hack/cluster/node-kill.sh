#!/usr/bin/env bash
# Kills node VM NAME's qemu with SIGKILL, as a host crash would (scenario 2, node loss):
#   hack/cluster/node-kill.sh NAME
# Only the qemu process of node-up.sh's tree gets the signal; hack/vm/run.sh then ends,
# flock releases the VM lock, and hack/cluster/node-down.sh [--delete] NAME cleans up the rest
# (pid file, the kubelet route of node-proxy, the Node). Prints the kill's time (UTC, ns).
source "$(dirname "$0")/node-lib.sh"

# qemu_of prints the qemu-system process among pid $1's descendants.
qemu_of() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		if [[ $(cat "/proc/$c/comm" 2>/dev/null) == qemu-system* ]]; then
			echo "$c"
			return
		fi
		qemu_of "$c"
	done
}

main() {
	local name=${1:?usage: hack/cluster/node-kill.sh NAME} pid qemu
	pid=$(cat "$NODE_RUN/$name/pid" 2>/dev/null) || { echo "node-kill: $name: not started" >&2; return 1; }
	qemu=$(qemu_of "$pid")
	[ -n "$qemu" ] || { echo "node-kill: $name: no qemu under pid $pid" >&2; return 1; }
	kill -KILL "$qemu"
	echo "node-kill: $name: qemu pid $qemu killed (SIGKILL) at $(date -u +%s%N)"
}

main "$@"
