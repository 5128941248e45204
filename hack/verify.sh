#!/usr/bin/env bash
# gofmt, go vet, staticcheck (pinned in hack/tools), vendor/ in sync with go.mod.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
step "gofmt"
bad=$(gofmt -l $(git ls-files -co --exclude-standard '*.go' | grep -v '^vendor/'))
if [ -n "$bad" ]; then echo "gofmt needed:"; echo "$bad"; exit 1; fi
step "go vet"
go vet ./...
go vet -tags integration ./...
step "staticcheck"
(cd hack/tools && GOFLAGS=-mod=mod go build -o "$OUT/bin/staticcheck" honnef.co/go/tools/cmd/staticcheck)
"$OUT/bin/staticcheck" ./...
"$OUT/bin/staticcheck" -tags integration ./...
step "vendor in sync"
# Check without touching the work tree: tidy -diff prints what would change,
# and vendor -o writes a fresh copy to compare.
if ! GOFLAGS=-mod=mod go mod tidy -diff; then
	echo "go.mod/go.sum not tidy: run go mod tidy && go mod vendor and commit"; exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
GOFLAGS=-mod=mod go mod vendor -o "$tmp/vendor"
if ! diff -r -q "$tmp/vendor" vendor >/dev/null; then
	diff -r -q "$tmp/vendor" vendor | head
	echo "vendor/ out of sync: run go mod vendor and commit"; exit 1
fi
echo "verify: ok"
