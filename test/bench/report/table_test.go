package report

import (
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// threeSides is one size measured by ours, upstream's IPVS proxier and
// upstream's nftables proxier.
var threeSides = []results.Fakes{
	{Side: results.UpstreamNFTables, Services: 1000, FullSync: results.Measure{Seconds: 0.4, KernelCalls: 10, KernelOperations: 30000,
		AllocBytes: 64 << 20, InFakeSeconds: 0.3, InFakeAllocBytes: 48 << 20},
		ServiceAdded: results.Measure{Iterations: 5, Seconds: 0.008, KernelCalls: 3, KernelOperations: 9}},
	{Side: results.Ours, Services: 1000, FullSync: results.Measure{Seconds: 0.1, KernelCalls: 14000},
		ServiceAdded: results.Measure{Iterations: 5, Seconds: 0.0004, KernelCalls: 15}},
	{Side: results.Upstream, Services: 1000, FullSync: results.Measure{Seconds: 0.3, KernelCalls: 28000},
		ServiceAdded: results.Measure{Iterations: 5, Seconds: 0.032, KernelCalls: 3078}},
}

func TestFakesTableThreeSides(t *testing.T) {
	var b strings.Builder
	FakesTable(&b, threeSides)
	checkThreeSides(t, b.String(), []string{
		"| 1000 | first full sync: time | 100 ms | 300 ms | 400 ms | 3.00× | 4.00× |",
		"| 1000 | first full sync: kernel calls | 14000 | 28000 | 10 | 2.00× | 0.00× |",
		"| 1000 | 1 Service added: time | 400 µs | 32 ms | 8 ms | 80.0× | 20.0× |",
		"| 1000 | first full sync: time, upstream-nftables less knftables' Fake's share | 100 ms | 300 ms | 100 ms | 3.00× | 1.00× |",
		"| 1000 | first full sync: allocated, upstream-nftables less knftables' Fake's share | 0 B | 0 B | 16 MiB | = | ∞ |",
		"| 1000 | 1 Service added: kernel calls | 15 | 3078 | 3 | 205× | 0.20× |",
	})
}

// checkThreeSides checks a table's header and separator for ours and
// upstream's two proxiers, and that it holds each of the lines.
func checkThreeSides(t *testing.T, table string, lines []string) {
	t.Helper()
	got := strings.Split(table, "\n")
	wantHeader := "| services | measure | ours | upstream | upstream-nftables | upstream ÷ ours | upstream-nftables ÷ ours |"
	if got[0] != wantHeader {
		t.Errorf("header\n%s\nwant\n%s", got[0], wantHeader)
	}
	if want := "|---:|---|---:|---:|---:|---:|---:|"; got[1] != want {
		t.Errorf("separator %s, want %s", got[1], want)
	}
	for _, want := range lines {
		if !strings.Contains(table, want+"\n") {
			t.Errorf("table lacks the line\n%s\nin\n%s", want, table)
		}
	}
}

func TestFakesIterationsNamesNFTablesOperations(t *testing.T) {
	var b strings.Builder
	FakesIterations(&b, threeSides)
	want := "- upstream-nftables at 1000 services: 0 process(es); per process 1 full sync, 0 single removals, 0 batches of 100, " +
		"5 Services added; kernel calls are nft transactions and reads, holding 30000 (full sync), 0 (1 removed), 0 (100 replaced), 9 (1 added) operations; " +
		"inside knftables' Fake: 300 ms of 400 ms and 48 MiB of 64 MiB (full sync), 0 of 0 and 0 B of 0 B (1 removed), " +
		"0 of 0 and 0 B of 0 B (100 replaced), 0 of 8 ms and 0 B of 0 B (1 added)\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("FakesIterations() =\n%s\nwant a line\n%s", b.String(), want)
	}
	if strings.Count(b.String(), "operations") != 1 || strings.Count(b.String(), "Fake") != 1 {
		t.Errorf("operations named for a side other than upstream-nftables:\n%s", b.String())
	}
}

func TestPlotHasALinePerSide(t *testing.T) {
	fakes := append([]results.Fakes(nil), threeSides...)
	for _, f := range threeSides {
		f.Services = 10000
		f.FullSync.Seconds *= 10
		fakes = append(fakes, f)
	}
	var b strings.Builder
	if err := Plot(&b, fakes, nil); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{results.Ours, results.Upstream, results.UpstreamNFTables} {
		// full sync: a solid line in the side's colour
		if !strings.Contains(b.String(), `stroke="`+sideColor[side]+`" stroke-width="2"/>`) {
			t.Errorf("no solid line for %s in\n%s", side, b.String())
		}
		if !strings.Contains(b.String(), ">"+side+": first full sync</text>") {
			t.Errorf("no legend for %s's full sync", side)
		}
	}
}
