#!/usr/bin/env bash
# Real-kernel benchmark: our kube-proxy, upstream's v1.37.2 in IPVS mode (side upstream) and the
# same binary in nftables mode (side upstream-nftables: bench-guest reads its table ip kube-proxy
# instead of IPVS), one after the other, each in a fresh VM (hack/vm/run.sh) against the same API
# server content, at each cluster size. A control plane of its own (hack/controlplane, CP_RUN=_output/bench/controlplane)
# runs on the host's loopback; the VM reaches it through a qemu guestfwd. Writes
# _output/bench/kernel.json (bench report turns it into the table and plot).
#   BENCH_KERNEL_SIZES ("1000 5000")  BENCH_KERNEL_SIDES ("ours upstream upstream-nftables")
#   BENCH_KERNEL_UPDATES (100)  BENCH_KERNEL_IDLE (120s: four periodic full syncs per family at the
#   30 s syncPeriod; the report gives idle CPU per 60 s)  BENCH_KERNEL_UPDATE_BUDGET (8m)
#   BENCH_KERNEL_GUEST_ARGS: more bench-guest flags, e.g. "-v 4 -grep Sync" to see the proxier's log
#   or "-profile-start 150s" / "-profile" for CPU profiles of the start-up / the idle window (base64 lines)
#   BENCH_KERNEL_APPEND=1: keep the results of earlier runs (e.g. rerun one side only)
#   BENCH_KERNEL_OURS: a kube-proxy binary to run as ours instead of building ./cmd/kube-proxy
#   (A/B runs against an older commit's build)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SIZES=${BENCH_KERNEL_SIZES:-1000 5000}
SIDES=${BENCH_KERNEL_SIDES:-ours upstream upstream-nftables}
UPDATES=${BENCH_KERNEL_UPDATES:-100}
IDLE=${BENCH_KERNEL_IDLE:-120s}
UPDATE_BUDGET=${BENCH_KERNEL_UPDATE_BUDGET:-8m}
BENCH="$OUT/bench"
GUEST="$BENCH/guest"

# binary_of prints the kube-proxy a side runs in the guest: upstream-nftables is upstream's
# binary too, which bench-guest starts with mode nftables.
binary_of() {
	case $1 in
	ours) echo /bench/kube-proxy ;;
	upstream | upstream-nftables) echo /bench/kube-proxy-upstream ;;
	*) echo "bench-kernel: unknown side $1 (ours, upstream, upstream-nftables)" >&2; return 1 ;;
	esac
}
for side in $SIDES; do binary_of "$side" >/dev/null; done
export CP_RUN="$BENCH/controlplane"
mkdir -p "$GUEST"

step "building: control plane and upstream kube-proxy (cached), our kube-proxy, bench tools"
hack/controlplane/build.sh
if [ -n "${BENCH_KERNEL_OURS:-}" ]; then
	cp "$BENCH_KERNEL_OURS" "$GUEST/kube-proxy"
else
	go build -trimpath -o "$GUEST/kube-proxy" ./cmd/kube-proxy
fi
go build -trimpath -o "$GUEST/bench-guest" ./test/bench/cmd/bench-guest
go build -trimpath -o "$BENCH/bench" ./test/bench/cmd/bench
cp "$OUT/controlplane/bin/kube-proxy-upstream" "$GUEST/kube-proxy-upstream"

# A control plane left by an interrupted run is stopped first.
[ ! -f "$CP_RUN/env" ] || hack/controlplane/down.sh
trap 'hack/controlplane/down.sh --keep-logs >/dev/null 2>&1 || true' EXIT
step "starting a control plane of our own ($CP_RUN)"
hack/controlplane/up.sh >/dev/null
source "$CP_RUN/env"
cp "$CP_GUEST_KUBECONFIG" "$GUEST/kubeconfig"

RESULTS="$BENCH/kernel-results.log"
# BENCH_KERNEL_APPEND=1 keeps earlier results: a side or size run again replaces its own.
[ "${BENCH_KERNEL_APPEND:-0}" = 1 ] || : >"$RESULTS"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
load_before=$(cut -d' ' -f1 /proc/loadavg)
# guestfwd's cmd: form spawns the relay per guest connection (its tcp: form shares one host
# connection among all of them: the driver beside the proxier would get garbage).
relay="$BENCH/relay.sh"
printf '#!/bin/sh\nexec %q relay 127.0.0.1:%s\n' "$BENCH/bench" "$CP_APISERVER_PORT" >"$relay"
chmod +x "$relay"
net="-netdev user,id=n0,restrict=on,guestfwd=tcp:$CP_GUEST_ADDR-cmd:$relay -device virtio-net-pci,netdev=n0"
for n in $SIZES; do
	step "loading $n services x 10 endpoints into the API server"
	"$BENCH/bench" kernel-load -kubeconfig "$CP_KUBECONFIG" -services "$n"
	for side in $SIDES; do
		binary=$(binary_of "$side")
		step "VM: $side kube-proxy at $n services (load $(cut -d' ' -f1 /proc/loadavg))"
		VM_MEMORY_MB=${VM_MEMORY_MB:-3072} hack/vm/run.sh --timeout "${BENCH_KERNEL_VM_TIMEOUT:-5400}" \
			--dir "$GUEST:/bench" --qemu "$net" -- \
			"/usr/bin/ip link set eth0 up && /usr/bin/ip addr add 10.0.2.15/24 dev eth0 &&" \
			"/bench/bench-guest -side $side -binary $binary -kubeconfig /bench/kubeconfig -services $n" \
			"-updates $UPDATES -idle $IDLE -update-budget $UPDATE_BUDGET ${BENCH_KERNEL_GUEST_ARGS:-}" | tee -a "$RESULTS" ||
			echo "bench-kernel: the $side run at $n services failed (see above)" | tee -a "$RESULTS"
	done
done

step "collecting results into $BENCH/kernel.json"
"$BENCH/bench" kernel-collect -in "$RESULTS" -out "$BENCH/kernel.json" -started "$started" -load-before "$load_before" \
	-note "VM: qemu TCG (software emulation), ${VM_CPUS:-2} vCPUs, ${VM_MEMORY_MB:-3072} MiB, Debian 6.1 kernel; host load shared with other jobs" \
	-note "all proxiers: syncPeriod 30s, minSyncPeriod 0s (ipvs section; nftables section for upstream-nftables); every update removes one endpoint of a different Service; no connections (upstream deletes such real servers at once)" \
	-note "upstream-nftables: rules in place = every Service's 10 endpoints in the DNAT rule of its chain in table ip kube-proxy; endpoint gone = its IP:port gone from that rule"
