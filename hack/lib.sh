# Common settings for the hack/ scripts; source it, do not run it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/_output"
# -trimpath keeps build-cache keys independent of the checkout directory, so a
# fresh clone (CI) reuses what an earlier build compiled.
export GOFLAGS="-mod=vendor -trimpath"
export CGO_ENABLED=0
mkdir -p "$OUT"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# built_from DIR KEY BINARY...: every BINARY is an executable in DIR and DIR/.stamp holds KEY
# (what they were built from), so a build script can skip its work.
built_from() {
	local dir=$1 key=$2 b
	shift 2
	for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
	[ "$(cat "$dir/.stamp" 2>/dev/null)" = "$key" ]
}

# IMAGE is the one image reference of ipvs-proxy's image: make image records it in the
# tarball, make release pins it by digest in the manifests it writes, hack/cluster imports it.
# Set it to the registry you push to: IMAGE=registry.example.com/net/kube-proxy:v0.1.0 make release.
IMAGE=${IMAGE:-ipvs-proxy/kube-proxy:dev}

# version_vars sets what a build is stamped with (each may be given in the environment):
#   IPVS_PROXY_VERSION  git describe --tags --match 'v*' --abbrev=12 --dirty; v0.0.0-<commit>[-dirty] before a tag
#   GIT_COMMIT          the commit hash
#   GIT_TREE_STATE      clean, or dirty when tracked files differ from the commit
#   BUILD_DATE          SOURCE_DATE_EPOCH when set, else the commit's time for a clean tree (one
#                       commit builds the same bytes), else now; RFC 3339 UTC
#   KUBE_VERSION        the k8s.io/kubernetes release in vendor/modules.txt
version_vars() {
	local short epoch
	GIT_COMMIT=${GIT_COMMIT:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}
	if [ -z "${GIT_TREE_STATE:-}" ]; then
		GIT_TREE_STATE=clean
		git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || GIT_TREE_STATE=dirty
	fi
	if [ -z "${IPVS_PROXY_VERSION:-}" ]; then
		IPVS_PROXY_VERSION=$(git -C "$ROOT" describe --tags --match 'v*' --abbrev=12 --dirty 2>/dev/null || true)
		if [ -z "$IPVS_PROXY_VERSION" ]; then
			short=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
			IPVS_PROXY_VERSION="v0.0.0-$short"
			[ "$GIT_TREE_STATE" = clean ] || IPVS_PROXY_VERSION+=-dirty
		fi
	fi
	if [ -z "${BUILD_DATE:-}" ]; then
		epoch=${SOURCE_DATE_EPOCH:-}
		[ -n "$epoch" ] || [ "$GIT_TREE_STATE" != clean ] || epoch=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || true)
		BUILD_DATE=$(date -u ${epoch:+-d "@$epoch"} +%Y-%m-%dT%H:%M:%SZ)
	fi
	KUBE_VERSION=${KUBE_VERSION:-$(awk '$1 == "#" && $2 == "k8s.io/kubernetes" { print $3; exit }' "$ROOT/vendor/modules.txt")}
	export IPVS_PROXY_VERSION GIT_COMMIT GIT_TREE_STATE BUILD_DATE KUBE_VERSION
}

# version_ldflags prints the -ldflags -X flags that stamp version_vars into a binary:
# ipvs-proxy's own (pkg/version) and the Kubernetes libraries' (k8s.io/component-base/version
# for kubernetes_build_info and --version=raw, k8s.io/client-go/pkg/version for the
# User-Agent), which otherwise say v0.0.0-master+$Format:%H$. The libraries come from a
# module release, not a git checkout: their gitCommit is left empty, their tree is clean.
version_ldflags() {
	version_vars
	local major=${KUBE_VERSION#v} minor pkg flags=""
	minor=${major#*.}
	major=${major%%.*} minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major"
		flags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.gitCommit= -X $pkg.buildDate=$BUILD_DATE"
	done
	pkg=github.com/ipvs-proxy/ipvs-proxy/pkg/version
	flags+=" -X $pkg.gitVersion=$IPVS_PROXY_VERSION -X $pkg.gitCommit=$GIT_COMMIT"
	flags+=" -X $pkg.gitTreeState=$GIT_TREE_STATE -X $pkg.buildDate=$BUILD_DATE"
	echo "${flags# }"
}
