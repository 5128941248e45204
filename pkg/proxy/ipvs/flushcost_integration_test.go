//go:build integration

package ipvs

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

var (
	flushCostEntries = flag.String("flushcost.entries", "", "TestKernelFlushCost: conntrack table sizes, comma-separated (e.g. 0,100000,1000000); empty skips the test")
	flushCostRuns    = flag.Int("flushcost.runs", 3, "TestKernelFlushCost: measurements per size and implementation (medians)")
)

// flushCostPrefix starts TestKernelFlushCost's result lines (hack/bench-flush.sh).
const flushCostPrefix = "BENCH-FLUSH-RESULT "

// flowsPerEndpoint are the retired endpoint's own flows, flushed each time.
const flowsPerEndpoint = 10

// TestKernelFlushCost measures, for make bench, the partial sync that
// retires one real server under the immediate policy (its conntrack flows
// flushed) and the flush alone, with the table holding N unrelated entries
// besides the endpoint's 10, for each conntrack implementation: whole-table
// dumps (conntrack.NewUnfiltered, before) and kernel-filtered dumps
// (conntrack.New). It prints one result line per size and implementation.
func TestKernelFlushCost(t *testing.T) {
	if *flushCostEntries == "" {
		t.Skip("no -flushcost.entries")
	}
	var sizes []int
	for _, s := range strings.Split(*flushCostEntries, ",") {
		n, err := strconv.Atoi(s)
		must(t, err)
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	raiseConntrackLimits(t, sizes[len(sizes)-1])
	n := newNode(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = true
	p := newRealProxier(t, n, cfg)
	p.OnServiceAdd(webService())
	both := slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10"), localEP("10.244.0.11"))
	p.OnEndpointSliceAdd(both)
	syncOK(t, p)
	onlyB := both.DeepCopy()
	onlyB.Endpoints = onlyB.Endpoints[1:]

	filled := 0
	for _, size := range sizes {
		start := time.Now()
		nettest.FillConntrack(t, unrelatedFlows(filled, size))
		t.Logf("conntrack table: %d unrelated entries (%d added in %.1f s)", size, size-filled, time.Since(start).Seconds())
		filled = size
		for _, mode := range []struct {
			name string
			ct   conntrack.Interface
		}{{"whole-table dump", conntrack.NewUnfiltered()}, {"kernel-filtered dump", conntrack.New()}} {
			p.deps.Conntrack = mode.ct
			r := results.Flush{Entries: size, Mode: mode.name, Runs: *flushCostRuns}
			var syncs, flushes []float64
			for run := range *flushCostRuns {
				nettest.FillConntrack(t, endpointFlows(run, 0))
				p.OnEndpointSliceUpdate(both, onlyB)
				start := time.Now()
				syncOK(t, p)
				syncs = append(syncs, time.Since(start).Seconds())
				p.OnEndpointSliceUpdate(onlyB, both)
				syncOK(t, p)

				nettest.FillConntrack(t, endpointFlows(run, 1))
				start = time.Now()
				deleted, err := mode.ct.Delete([]conntrack.Filter{retiredFilter()})
				flushes = append(flushes, time.Since(start).Seconds())
				must(t, err)
				r.Flushed = deleted
				if deleted != flowsPerEndpoint {
					t.Errorf("%s at %d entries: flushed %d, want %d", mode.name, size, deleted, flowsPerEndpoint)
				}
			}
			// The sync flushed the endpoint's flows too: nothing of it is left.
			if left, err := conntrack.New().Delete([]conntrack.Filter{retiredFilter()}); err != nil || left != 0 {
				t.Errorf("%s at %d entries: %d flows of the retired endpoint left after the syncs (%v)", mode.name, size, left, err)
			}
			r.SyncSeconds, r.FlushSeconds = median(syncs), median(flushes)
			b, _ := json.Marshal(r)
			fmt.Fprintf(os.Stdout, "%s%s\n", flushCostPrefix, b)
		}
	}
}

// raiseConntrackLimits makes room for the entries (global settings, set
// from the VM's initial namespace): nf_conntrack_max, and a hash table of
// a quarter of it as kube-proxy sizes it (--conntrack-max-per-core).
func raiseConntrackLimits(t *testing.T, entries int) {
	max := entries + 100000
	writeFile(t, "/proc/sys/net/netfilter/nf_conntrack_max", strconv.Itoa(max))
	writeFile(t, "/sys/module/nf_conntrack/parameters/hashsize", strconv.Itoa(max/4))
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// unrelatedFlows are entries from..to-1 of a table of connections to a
// service and endpoint the proxier does not know.
func unrelatedFlows(from, to int) []nettest.Flow {
	flows := make([]nettest.Flow, 0, to-from)
	for i := from; i < to; i++ {
		client := netip.AddrFrom4([4]byte{172, 16, byte(i / 50000 >> 8), byte(i / 50000)})
		flows = append(flows, nettest.Flow{
			Client:   netip.AddrPortFrom(client, uint16(10000+i%50000)),
			Service:  netip.MustParseAddrPort("10.250.0.1:443"),
			Endpoint: netip.MustParseAddrPort("10.251.0.1:8443"),
		})
	}
	return flows
}

// endpointFlows are flowsPerEndpoint connections to the web service
// answered by pod-a (10.244.0.10), distinct for each run and phase.
func endpointFlows(run, phase int) []nettest.Flow {
	var flows []nettest.Flow
	for i := range flowsPerEndpoint {
		flows = append(flows, nettest.Flow{
			Client:   netip.AddrPortFrom(netip.MustParseAddr("192.168.50.2"), uint16(20000+run*100+phase*50+i)),
			Service:  netip.MustParseAddrPort("10.96.0.10:80"),
			Endpoint: netip.MustParseAddrPort("10.244.0.10:8080"),
		})
	}
	return flows
}

// retiredFilter is what the proxier flushes when pod-a is retired.
func retiredFilter() conntrack.Filter {
	return conntrack.Filter{Protocol: conntrack.ProtoTCP, OrigDst: netip.MustParseAddr("10.96.0.10"), OrigDstPort: 80,
		ReplySrc: netip.MustParseAddr("10.244.0.10"), ReplySrcPort: 8080}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
