//go:build cluster

package swap

import (
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
)

// No cluster needed: go test -tags cluster -run TestLeftoverLines ./test/cluster/swap
//
// A part that could not be read in the state after the swap or in ours alone is not
// "identical": CompareStates leaves it out of its diffs and returns an error, and the
// report's cell must say so.
func TestLeftoverLinesUnreadable(t *testing.T) {
	alone := map[string]string{"ipvs": `{"Virtual":[]}`, "iptables-legacy": "", "ip6tables-legacy": "", "ipset": ""}
	end := map[string]string{"ipvs": "error: exit 1: open IPVS netlink: operation not permitted",
		"iptables-legacy": "", "ip6tables-legacy": "", "ipset": ""}
	diffs, err := podkit.CompareStates(end, alone)
	if err == nil || len(diffs) != 0 {
		t.Fatalf("CompareStates = %+v, %v; want no diff and an error", diffs, err)
	}
	cells := strings.Join(leftoverLines(t, diffs, err), "<br>")
	if strings.Contains(cells, "identical") || !strings.Contains(cells, "ipvs") {
		t.Errorf("report cell with the IPVS part unreadable: %q; want it said, not identical", cells)
	}
}
