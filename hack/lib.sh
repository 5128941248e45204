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
