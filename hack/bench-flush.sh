#!/usr/bin/env bash
# Flush cost, in the VM: the partial sync that retires one real server under the immediate
# policy (its conntrack flows flushed), and the flush alone, with 0, 100k and 1M unrelated
# conntrack entries, for both conntrack implementations (whole-table dump as before,
# kernel-filtered dump now): pkg/proxy/ipvs TestKernelFlushCost. Writes _output/bench/flush.json
# (bench report turns it into the "Flush cost" table).
#   BENCH_FLUSH_SIZES ("0,100000,1000000")  BENCH_FLUSH_RUNS (3: medians)
#   VM_MEMORY_MB (4096: a million entries take about 350 MiB of kernel memory, and the
#   whole-table dump as much again in the proxier)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
BENCH="$OUT/bench"
mkdir -p "$BENCH"
go build -trimpath -o "$BENCH/bench" ./test/bench/cmd/bench
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1 /proc/loadavg)
RESULTS="$BENCH/flush-results.log"
VM_MEMORY_MB=${VM_MEMORY_MB:-4096} INTEGRATION_RUN='^TestKernelFlushCost$' INTEGRATION_TEST_TIMEOUT=${BENCH_FLUSH_TIMEOUT:-40m} \
	INTEGRATION_ARGS="-flushcost.entries=${BENCH_FLUSH_SIZES:-0,100000,1000000} -flushcost.runs=${BENCH_FLUSH_RUNS:-3}" \
	hack/integration.sh pkg/proxy/ipvs | tee "$RESULTS" || echo "bench-flush: the VM run failed (see above)"
step "collecting results into $BENCH/flush.json"
"$BENCH/bench" flush-collect -in "$RESULTS" -out "$BENCH/flush.json" -started "$started" -load-before "$load_before" \
	-note "VM: qemu TCG (software emulation), ${VM_CPUS:-2} vCPUs, ${VM_MEMORY_MB:-4096} MiB, Debian 6.1 kernel; host load shared with other jobs" \
	-note "nf_conntrack_max = largest size + 100k, hashsize a quarter of it; unrelated entries are TCP ESTABLISHED flows of one other service; the retired endpoint has 10 flows; sync and flush are medians of ${BENCH_FLUSH_RUNS:-3}"
