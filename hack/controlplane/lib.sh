# Settings shared by the control-plane scripts; source it, do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
CP_DIR="$ROOT/hack/controlplane"
CP_OUT="$OUT/controlplane"
CP_BIN="$CP_OUT/bin"
# CP_RUN may be set to run a second, independent control plane (its own state and ports).
CP_RUN=${CP_RUN:-$CP_OUT/run}
K8S_VERSION=v1.37.2

# k8s_version_ldflags prints the -ldflags that stamp K8S_VERSION into a k8s.io/kubernetes
# binary (otherwise it reports v0.0.0-master, and kubeadm derives image tags from it).
k8s_version_ldflags() {
	local minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	echo "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"
}

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
# ${2:-$CP_BIN}/$1: SIGTERM, then SIGKILL after 10 s.
stop_daemon() {
	local name=$1 bin=${2:-$CP_BIN} pid exe i
	pid=$(cat "$CP_RUN/$name.pid" 2>/dev/null) || return 0
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
	[[ "$exe" == "$bin/$name"* ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "controlplane: $name ($pid) ignored SIGTERM; killing" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

# port_free succeeds when nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a random free loopback port not among its arguments, below the
# ephemeral range: a port there may be the local end of some connection, which
# port_free does not see and which makes a later bind fail (seen: EADDRINUSE).
free_port() {
	local p low
	low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	((low > 12000)) || low=32768
	while :; do
		p=$((10000 + RANDOM % (low - 10000)))
		[[ " $* " == *" $p "* ]] && continue
		port_free "$p" && { echo "$p"; return; }
	done
}

# start_daemon runs "$@" detached in its own session, logging to $CP_RUN/$1.log, and
# records the pid of the binary itself in $CP_RUN/$1.pid.
start_daemon() {
	local name=$1
	shift
	setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$CP_RUN/$name.pid" "$@" \
		>"$CP_RUN/$name.log" 2>&1 </dev/null &
}

# wait_for polls "$@" until it succeeds; fails after $2 seconds or when daemon $1 died.
wait_for() {
	local name=$1 timeout=$2 pid i
	shift 2
	for ((i = 0; i < timeout * 10; i++)); do
		"$@" >/dev/null 2>&1 && return
		pid=$(cat "$CP_RUN/$name.pid" 2>/dev/null || true)
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$CP_RUN/$name.log" >&2
			echo "controlplane: $name exited during startup, log: $CP_RUN/$name.log" >&2
			return 1
		fi
		sleep 0.1
	done
	tail -n 30 "$CP_RUN/$name.log" >&2
	echo "controlplane: $name not ready after ${timeout}s, log: $CP_RUN/$name.log" >&2
	return 1
}

# issue_cert writes $CP_RUN/pki/$1.key and $1.crt, signed by the control plane's CA
# ($CP_RUN/pki/ca.*), for subject $2 with the extension lines $3...
issue_cert() {
	local name=$1 subject=$2 pki="$CP_RUN/pki"
	shift 2
	openssl req -newkey rsa:2048 -nodes -subj "$subject" \
		-keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
	printf '%s\n' "$@" >"$pki/$name.ext"
	openssl x509 -req -days 30 -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null ||
		{ echo "controlplane: signing certificate $name ($subject) failed" >&2; return 1; }
	chmod 600 "$pki/$name.key"
}
