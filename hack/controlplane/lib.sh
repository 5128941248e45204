# Settings shared by the control-plane scripts; source it, do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CP_DIR="$ROOT/hack/controlplane"
CP_OUT="$OUT/controlplane"
CP_BIN="$CP_OUT/bin"
# CP_RUN may be set to run a second, independent control plane (its own state and ports).
CP_RUN=${CP_RUN:-$CP_OUT/run}
K8S_VERSION=v1.37.2

# need_cmd installs Debian package $2 when command $1 is missing.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 && return
	step "installing $2 (for $1)"
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2"
}

# stop_daemon stops the daemon whose pid $CP_RUN/$1.pid holds, if that pid still runs
# $CP_BIN/$1: SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
	local name=$1 pid exe i
	pid=$(cat "$CP_RUN/$name.pid" 2>/dev/null) || return 0
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
	[[ "$exe" == "$CP_BIN/$name"* ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "controlplane: $name ($pid) ignored SIGTERM; killing" >&2
	kill -KILL "$pid" 2>/dev/null || true
}
