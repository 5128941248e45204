# Common settings for the hack/ scripts; source it, do not run it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/_output"
export GOFLAGS=-mod=vendor
export CGO_ENABLED=0
mkdir -p "$OUT"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
