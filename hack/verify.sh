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
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp go.mod go.sum "$tmp/"
GOFLAGS=-mod=mod go mod tidy
GOFLAGS=-mod=mod go mod vendor
if ! diff -q go.mod "$tmp/go.mod" >/dev/null || ! diff -q go.sum "$tmp/go.sum" >/dev/null || [ -n "$(git status --porcelain vendor)" ]; then
	echo "go.mod/go.sum/vendor out of sync: run go mod tidy && go mod vendor and commit"; git status --short vendor | head; exit 1
fi
echo "verify: ok"
