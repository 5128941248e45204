#!/usr/bin/env bash
# Unit tests: the whole module on the in-memory fakes (no root, no kernel IPVS).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
step "unit tests"
go test -count=1 "$@" ./...
