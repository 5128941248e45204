#!/usr/bin/env bash
# make bench: our IPVS proxier side by side with upstream's (v1.37.2), written to _output/bench/:
#   1. go-bench.txt: pkg/proxy/ipvs benchmarks with -benchmem (a partial sync allocates the
#      same at 1k, 10k and 30k services);
#   2. fakes.json: ours, upstream's IPVS proxier and upstream's nftables proxier (on knftables'
#      Fake) in-process on fakes at 1k, 10k, 30k services x 10 endpoints;
#   3. kernel.json: ours, upstream's in IPVS mode and upstream's in nftables mode in the VM
#      against a real API server at 1k and 5k services (hack/bench-kernel.sh; BENCH_KERNEL=0
#      skips it: it takes about an hour and a half);
#   4. flush.json: the cost of retiring one real server (immediate policy, conntrack flush) with
#      0, 100k and 1M conntrack entries, in the VM (hack/bench-flush.sh; BENCH_FLUSH=0 skips it);
#   5. bench.md (tables) and sync-time.svg (sync time vs cluster size).
# BENCH_FAKES_ARGS adds flags to "bench fakes" (e.g. "-sizes 1000,10000 -runs 1").
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
BENCH="$OUT/bench"
mkdir -p "$BENCH"
go build -trimpath -o "$BENCH/bench" ./test/bench/cmd/bench

step "1/5 pkg/proxy/ipvs benchmarks with -benchmem (load $(cut -d' ' -f1 /proc/loadavg))"
{
	go test -run '^$' -bench 'BenchmarkFullSync' -benchmem -benchtime=3x ./pkg/proxy/ipvs/
	go test -run '^$' -bench 'BenchmarkOneEndpointRemoved|BenchmarkNothingChanged|BenchmarkHundredEndpointsReplaced' -benchmem -benchtime=300x ./pkg/proxy/ipvs/
} | tee "$BENCH/go-bench.txt"

step "2/5 ours vs upstream (IPVS, nftables) on fakes, in-process (each side and size in a process and network namespace of its own)"
# shellcheck disable=SC2086 # BENCH_FAKES_ARGS is a list of flags
"$BENCH/bench" fakes -out "$BENCH/fakes.json" ${BENCH_FAKES_ARGS:-}

if [ "${BENCH_KERNEL:-1}" != 0 ]; then
	step "3/5 ours vs upstream (IPVS and nftables modes) on the real kernel, in the VM (hack/bench-kernel.sh)"
	hack/bench-kernel.sh
else
	step "3/5 real kernel: skipped (BENCH_KERNEL=0); an earlier kernel.json is reported if there is one"
fi

if [ "${BENCH_FLUSH:-1}" != 0 ]; then
	step "4/5 flush cost on the real kernel, in the VM (hack/bench-flush.sh)"
	hack/bench-flush.sh
else
	step "4/5 flush cost: skipped (BENCH_FLUSH=0); an earlier flush.json is reported if there is one"
fi

step "5/5 report: $BENCH/bench.md and $BENCH/sync-time.svg"
"$BENCH/bench" report -dir "$BENCH"
