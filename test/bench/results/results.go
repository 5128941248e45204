// Package results holds what the benchmarks measure, as written to and read
// from _output/bench/*.json, and the machine's load while they ran.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Sides of a comparison.
const (
	// Ours is our proxier on our fakes only.
	Ours = "ours"
	// OursNetlink is our proxier on our fakes but the real netdev: it binds
	// service addresses with netlink, as upstream's proxier always does.
	OursNetlink = "ours-netlink"
	// Upstream is upstream's IPVS proxier on its fakes (and real netlink).
	Upstream = "upstream"
	// UpstreamNFTables is upstream's nftables proxier: on knftables' Fake
	// in-process, on the real kernel (nft) in the VM.
	UpstreamNFTables = "upstream-nftables"
)

// Measure is one kind of sync, the median over its iterations.
type Measure struct {
	Iterations  int     `json:"iterations"`
	Seconds     float64 `json:"seconds"`
	KernelCalls int     `json:"kernelCalls"`
	// KernelOperations is, for upstream-nftables, the operations (add,
	// delete, flush... commands) in its transactions; each transaction is
	// one kernel call. Zero for the other sides (one call, one operation).
	KernelOperations int `json:"kernelOperations,omitempty"`
	// InFakeSeconds and InFakeAllocBytes are, for upstream-nftables, the
	// part of Seconds and AllocBytes spent inside knftables' Fake (it copies
	// the whole table per transaction and scans linearly): the fake's cost,
	// not the proxier's nor a kernel's. Not measured for the other sides.
	InFakeSeconds    float64 `json:"inFakeSeconds,omitempty"`
	InFakeAllocBytes int64   `json:"inFakeAllocBytes,omitempty"`
	// AllocBytes and Allocs are what the sync allocated on the Go heap.
	AllocBytes int64 `json:"allocBytes"`
	Allocs     int64 `json:"allocs"`
	// PeakHeapBytes is the highest heap in use seen during the sync, above
	// the heap in use just before it (sampled every millisecond).
	PeakHeapBytes int64 `json:"peakHeapBytes,omitempty"`
}

// Fakes is one side at one cluster size on the fakes.
type Fakes struct {
	Side     string `json:"side"`
	Services int    `json:"services"`
	// Runs is how many processes measured it (medians across them).
	Runs     int     `json:"runs"`
	FullSync Measure `json:"fullSync"`
	// RetainedBytes is the heap the proxier keeps after its syncs
	// (heap with it minus heap once it is dropped, both after a GC).
	RetainedBytes  int64   `json:"retainedBytes"`
	OneRemoved     Measure `json:"oneRemoved"`
	HundredChanged Measure `json:"hundredChanged"`
	// ServiceAdded is the sync after one new Service with its endpoints.
	ServiceAdded Measure `json:"serviceAdded"`
	// Capped says iterations were cut to keep within the time budget.
	Capped bool `json:"capped,omitempty"`
}

// Kernel is one proxier at one cluster size in the VM.
type Kernel struct {
	Side     string `json:"side"`
	Services int    `json:"services"`
	// ProgramSeconds is from the proxier's start until every virtual
	// server and real server of the cluster was in the kernel (for
	// upstream-nftables: every Service's endpoints in its nftables table).
	ProgramSeconds float64 `json:"programSeconds"`
	// SettleSeconds is from the start until the proxier had finished its
	// first syncs and had none queued.
	SettleSeconds float64 `json:"settleSeconds"`
	// FullSyncSeconds is the mean duration (kubeproxy_sync_proxy_rules_duration_seconds,
	// IPv4) of the syncs in the idle window: periodic full syncs for both.
	FullSyncSeconds float64 `json:"fullSyncSeconds"`
	IdleFullSyncs   int     `json:"idleFullSyncs"`
	// Latencies are seconds from an EndpointSlice update to its removed
	// real server being gone from IPVS (for upstream-nftables: its IP:port
	// gone from the Service's DNAT rule).
	Updates    int     `json:"updates"`
	LatencyP50 float64 `json:"latencyP50"`
	LatencyP99 float64 `json:"latencyP99"`
	LatencyMax float64 `json:"latencyMax"`
	// IdleCPUSeconds is the CPU time (user+system) the proxier used in
	// IdleSeconds without any change.
	IdleSeconds    float64 `json:"idleSeconds"`
	IdleCPUSeconds float64 `json:"idleCPUSeconds"`
	// IdleChildCPUSeconds is the CPU time of the commands it ran meanwhile
	// (iptables, ip6tables, ipset; nft for upstream-nftables).
	IdleChildCPUSeconds float64 `json:"idleChildCPUSeconds"`
	// IdleSyncs is how many syncs (all families) ended in that window.
	IdleSyncs int `json:"idleSyncs"`
	// PeakRSSBytes is the proxier's resident set high-water mark.
	PeakRSSBytes int64  `json:"peakRSSBytes"`
	Note         string `json:"note,omitempty"`
}

// KernelResultPrefix starts the line on which bench-guest prints a Kernel
// as JSON.
const KernelResultPrefix = "BENCH-KERNEL-RESULT "

// ReadKernelLines reads the Kernel results from VM output (other lines are
// skipped); a later result of the same side and size replaces an earlier
// one (a side rerun with BENCH_KERNEL_APPEND=1).
func ReadKernelLines(r io.Reader) ([]Kernel, error) {
	var out []Kernel
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		_, line, ok := strings.Cut(sc.Text(), KernelResultPrefix)
		if !ok {
			continue
		}
		var k Kernel
		if err := json.Unmarshal([]byte(line), &k); err != nil {
			return nil, fmt.Errorf("decode result line %q: %w", line, err)
		}
		out = slices.DeleteFunc(out, func(o Kernel) bool { return o.Side == k.Side && o.Services == k.Services })
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read VM output: %w", err)
	}
	return out, nil
}

// Flush is the cost of retiring one real server under the immediate
// policy (its conntrack flows flushed) with one conntrack implementation
// while the table holds Entries unrelated entries, in the VM
// (pkg/proxy/ipvs TestKernelFlushCost, hack/bench-flush.sh).
type Flush struct {
	Entries int `json:"entries"`
	// Mode is the conntrack implementation: "whole-table dump" (before:
	// every entry of the family read and matched in the proxier) or
	// "kernel-filtered dump" (CTA_FILTER: the kernel sends the matches).
	Mode string `json:"mode"`
	Runs int    `json:"runs"`
	// SyncSeconds is the partial sync that retires the real server (median);
	// FlushSeconds the conntrack deletion alone (median).
	SyncSeconds  float64 `json:"syncSeconds"`
	FlushSeconds float64 `json:"flushSeconds"`
	// Flushed is the entries one flush deleted (the endpoint's own).
	Flushed int `json:"flushed"`
}

// Run is one benchmark group's output file.
type Run struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	CPUs     int       `json:"cpus"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1-minute average.
	LoadBefore float64  `json:"loadBefore"`
	LoadAfter  float64  `json:"loadAfter"`
	Fakes      []Fakes  `json:"fakes,omitempty"`
	Kernel     []Kernel `json:"kernel,omitempty"`
	Flush      []Flush  `json:"flush,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// NewRun starts a run record now.
func NewRun() *Run {
	return &Run{Started: time.Now(), CPUs: runtime.NumCPU(), LoadBefore: Load()}
}

// Finish stamps the end of the run.
func (r *Run) Finish() {
	r.Finished = time.Now()
	r.LoadAfter = Load()
}

// Load is the 1-minute load average (0 when unknown).
func Load() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	_, _ = fmt.Sscan(strings.Fields(string(b))[0], &l)
	return l
}

// Write stores a run as indented JSON.
func (r *Run) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Read loads a run written by Write.
func Read(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &r, nil
}
