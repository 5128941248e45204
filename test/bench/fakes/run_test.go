package fakes

import (
	"context"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

// TestServiceAdded loads a tiny cluster into a side that needs no network
// namespace, adds one Service, and finds it in the fake kernel after the
// measured sync, which counted kernel calls.
func TestServiceAdded(t *testing.T) {
	for _, tc := range []struct {
		side     string
		inKernel func(kernel any) bool
	}{
		{results.Ours, func(kernel any) bool {
			vss, err := kernel.(*ourKernel).ipvs.List()
			if err != nil {
				t.Fatal(err)
			}
			return containsVirtualServer(vss, cluster.ClusterIP(3).String())
		}},
		{results.UpstreamNFTables, func(kernel any) bool {
			return strings.Contains(kernel.(*upstreamproxier.NFTables).Fake.Dump(), cluster.ClusterIP(3).String()+" . tcp . 80 : goto")
		}},
	} {
		t.Run(tc.side, func(t *testing.T) {
			s, err := newSide(context.Background(), tc.side)
			if err != nil {
				t.Fatal(err)
			}
			b := load(s, 3)
			s.provider.OnServiceSynced()
			if full := measure(s, true, s.provider.OnEndpointSlicesSynced); full.KernelCalls == 0 {
				t.Errorf("first sync: no kernel calls counted")
			}
			if tc.inKernel(s.kernel) {
				t.Fatalf("Service 3 is in the kernel before it was added")
			}
			added := b.repeat(1, 0, b.addService)
			if added.Iterations != 1 || added.KernelCalls == 0 {
				t.Errorf("Service added: %+v, want 1 iteration with kernel calls", added)
			}
			if tc.side == results.UpstreamNFTables && added.KernelOperations == 0 {
				t.Errorf("Service added: no nft operations counted")
			}
			if !tc.inKernel(s.kernel) {
				t.Errorf("Service 3 is not in the kernel after its sync")
			}
		})
	}
}

func containsVirtualServer(vss []ipvs.VirtualServer, addr string) bool {
	for _, vs := range vss {
		if vs.Address.String() == addr {
			return true
		}
	}
	return false
}
