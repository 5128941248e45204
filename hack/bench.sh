#!/usr/bin/env bash
# Benchmarks on the fakes: full sync and one-endpoint-change sync at 1k and 10k services.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
step "proxier benchmarks (fakes)"
go test -run '^$' -bench . -benchmem -benchtime=3x ./pkg/proxy/ipvs/ | tee "$OUT/bench.txt"
