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
