#!/usr/bin/env bash
# Stops node VM NAME that node-up.sh started (flock, run.sh, qemu and the rest of its process tree) and, with
# --delete, deletes its Node from the API server. Keeps the logs in _output/cluster/run/NAME.
#   hack/cluster/node-down.sh [--delete] NAME...
source "$(dirname "$0")/node-lib.sh"

# tree prints pid $1 and all its descendants (hack/vm/run.sh's timeout puts qemu in a
# process group of its own, so killing the node's group would miss it).
tree() {
	local c
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$c"; done
}

stop_node() {
	local name=$1 dir=$NODE_RUN/$1 pid i
	pid=$(cat "$dir/pid" 2>/dev/null) || { echo "node-down: $name: not started" >&2; return 0; }
	if kill -0 "$pid" 2>/dev/null; then
		step "node-down: stopping $name (pid $pid and its descendants)"
		local pids
		pids=$(tree "$pid")
		kill -TERM $pids 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL $pids 2>/dev/null || true
	fi
	rm -f "$dir/pid"
	set_kubelet_route "$name"
}

delete_node() {
	[ -f "$CP_RUN/env" ] || return 0
	source "$CP_RUN/env"
	curl -sS -o /dev/null --cacert "$CP_CA" -H "Authorization: Bearer $CP_TOKEN" -X DELETE \
		"$CP_APISERVER_URL/api/v1/nodes/$1" || true
}

main() {
	local delete=""
	[ "${1:-}" = --delete ] && { delete=1; shift; }
	[ $# -gt 0 ] || { echo "usage: hack/cluster/node-down.sh [--delete] NAME..." >&2; return 2; }
	local n
	for n in "$@"; do
		stop_node "$n"
		[ -z "$delete" ] || delete_node "$n"
	done
}

main "$@"
