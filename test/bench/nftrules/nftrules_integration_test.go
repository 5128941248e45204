//go:build integration

package nftrules

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

func nft(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %v: %v: %s", args, err, out)
	}
	return out
}

// On the VM's kernel and nft: the JSON listing and the netlink reads of the
// fixture's table see the same endpoints, and a chain rewritten without
// one endpoint loses it in both.
func TestKernelListingAndNetlinkAgree(t *testing.T) {
	nettest.EnterNewNetns(t)
	nft(t, "-f", "testdata/table.nft")
	rs, err := Parse(nft(t, "-j", "list", "table", Family, Table))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewChainReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, addr := range []string{"10.96.1.0", "10.96.1.1"} {
		chain, _ := rs.Chain(svc(addr))
		got, err := r.Targets(chain)
		if err != nil {
			t.Fatal(err)
		}
		if want := rs.Endpoints(chain); len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: netlink read %v, nft's JSON %v", chain, got, want)
		}
	}
	chain := "service-ABCDEFGH-bench/svc-00000/tcp/http"
	nft(t, "flush", "chain", Family, Table, chain)
	nft(t, "add", "rule", Family, Table, chain, "meta", "l4proto", "tcp", "dnat", "ip", "addr", ".", "port", "to",
		"numgen", "random", "mod", "2", "map", "{ 0 : 10.128.0.1 . 8080, 1 : 10.128.0.2 . 8080 }")
	got, err := r.Targets(chain)
	if err != nil {
		t.Fatal(err)
	}
	if want := eps("10.128.0.1:8080", "10.128.0.2:8080"); !slices.Equal(got, want) {
		t.Errorf("after the rewrite: netlink read %v, want %v", got, want)
	}
}
