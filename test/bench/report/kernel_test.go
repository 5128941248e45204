package report

import (
	"os"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// testdata/kernel-results.log is hack/bench-kernel.sh's log shape with
// made-up figures: the three sides at 1k (ours run twice: the later line
// counts), and no upstream-nftables result at 5k (its run failed).
func readKernelFixture(t *testing.T) []results.Kernel {
	t.Helper()
	f, err := os.Open("testdata/kernel-results.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kernel, err := results.ReadKernelLines(f)
	if err != nil {
		t.Fatal(err)
	}
	return kernel
}

func TestReadKernelLinesKeepsTheLaterRun(t *testing.T) {
	kernel := readKernelFixture(t)
	if len(kernel) != 5 {
		t.Fatalf("%d results, want 5: %+v", len(kernel), kernel)
	}
	ours, _ := find(kernel, results.Ours, 1000)
	if ours.ProgramSeconds != 10 {
		t.Errorf("ours at 1000 from the earlier line: %+v", ours)
	}
}

func TestKernelTableThreeSides(t *testing.T) {
	var b strings.Builder
	KernelTable(&b, readKernelFixture(t))
	checkThreeSides(t, b.String(), []string{
		"| 1000 | start to all endpoints in the kernel (real servers / DNAT rules) | 10 s | 20 s | 5 s | 2.00× | 0.50× |",
		"| 1000 | update to endpoint gone from the kernel: p50 | 100 ms | 12 s | 200 ms | 120× | 2.00× |",
		"| 1000 | update to endpoint gone from the kernel: p99 | 400 ms | 19 s | 800 ms | 47.5× | 2.00× |",
		"| 1000 | idle CPU per 60 s: proxier | 1 s | 4 s | 500 ms | 4.00× | 0.50× |",
		"| 1000 | peak RSS | 50 MiB | 100 MiB | 75 MiB | 2.00× | 1.50× |",
		"| 1000 | updates timed; idle window; syncs in it (all families) | 100; 60 s; 2 | 100; 60 s; 2 | 100; 60 s; 0 | | |",
		"| 5000 | start to all endpoints in the kernel (real servers / DNAT rules) | 40 s | 60 s | – | 1.50× | – |",
		"| 5000 | updates timed; idle window; syncs in it (all families) | 100; 60 s; 2 | 100; 60 s; 2 | – | | |",
		"- upstream-nftables at 1000 services: nftables mode syncs fully only at start and hourly",
	})
}

func TestKernelPanelHasALinePerSide(t *testing.T) {
	var b strings.Builder
	if err := Plot(&b, nil, readKernelFixture(t)); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{results.Ours, results.Upstream, results.UpstreamNFTables} {
		for _, kind := range []string{"full sync", "update→gone p99", "update→gone p50"} {
			if !strings.Contains(b.String(), ">"+side+": "+kind+"</text>") {
				t.Errorf("no legend for %s's %s", side, kind)
			}
		}
	}
}

// An idle window of several sync periods is reported per 60 s, so that sides
// measured over windows of different lengths compare.
func TestKernelTableIdleCPUPer60s(t *testing.T) {
	kernel := []results.Kernel{
		{Side: results.Ours, Services: 1000, IdleSeconds: 180, IdleCPUSeconds: 9, IdleChildCPUSeconds: 3},
		{Side: results.Upstream, Services: 1000, IdleSeconds: 120, IdleCPUSeconds: 60, IdleChildCPUSeconds: 0},
	}
	var b strings.Builder
	KernelTable(&b, kernel)
	for _, want := range []string{
		"| 1000 | idle CPU per 60 s: proxier | 3 s | 30 s | 10.0× |",
		"| 1000 | idle CPU per 60 s: commands it ran | 1 s | 0 | 0.00× |",
		"| 1000 | updates timed; idle window; syncs in it (all families) | 0; 180 s; 0 | 0; 120 s; 0 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table misses %q:\n%s", want, b.String())
		}
	}
	if got := per60s(2, 0); got != 2 {
		t.Errorf("per60s without a window = %v, want the figure as it is", got)
	}
}
