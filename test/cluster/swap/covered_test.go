//go:build cluster

package swap

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// No cluster needed: go test -tags cluster -run TestClientCovered ./test/cluster/swap
//
// The test's inline check (duration - time.Since(clientStart) < 0) measures from
// clientStart, taken after the client pod ran and the holder's connections opened (up to a
// minute later): a client that ended during the gate's rollout passed it, and the row's
// "0 failed" covered half the swap. What counts is the client's last request, on the host
// clock, against the end of the last step and its settle time.
func TestClientCovered(t *testing.T) {
	node := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	offset := 2 * time.Second // host - node
	rep := podkit.ClientReport{OriginUnixNano: node.UnixNano()}
	for s := time.Duration(0); s <= 600*time.Second; s += 50 * time.Millisecond {
		rep.Requests = append(rep.Requests, results.Request{Start: s, Kind: results.KindOK})
	}
	lastHost := node.Add(600*time.Second + offset)
	if err := clientCovered(rep, offset, lastHost.Add(-time.Second)); err != nil {
		t.Errorf("client running a second past the steps: %v", err)
	}
	if err := clientCovered(rep, offset, lastHost.Add(45*time.Second)); err == nil {
		t.Error("client ended 45 s before the steps settled: no error")
	}
	if err := clientCovered(podkit.ClientReport{OriginUnixNano: node.UnixNano()}, offset, node); err == nil {
		t.Error("no requests: no error")
	}
}
