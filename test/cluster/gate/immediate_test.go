//go:build cluster

package gate

import (
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
)

// No cluster needed: go test -tags cluster -run TestImmediateDeleted ./test/cluster/gate
//
// Policy immediate means the real server is deleted without a weight-0 stage: check()
// passed any deletion within observe, so a real server that went to weight 0 (upstream's
// drain) and was deleted later, when the connection ended, read as immediate.
func TestImmediateDeleted(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	zero := podkit.Change{Event: "weight", Weight: 0, Read: t0.Add(100 * time.Millisecond)}
	del := podkit.Change{Event: "del", Read: t0.Add(5 * time.Second)}
	if immediateDeleted(true, true, zero, del) {
		t.Error("weight 0 then deleted 4.9 s later: read as immediate")
	}
	if !immediateDeleted(false, true, podkit.Change{}, del) {
		t.Error("deleted without a weight-0 stage: not read as immediate")
	}
	if immediateDeleted(true, false, zero, podkit.Change{}) {
		t.Error("weight 0 and never deleted: read as immediate")
	}
}
