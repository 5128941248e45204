package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// The Node watch's handler must not wait for a sync in progress (p.mu held):
// it records the change, which the next sync takes.
func TestNodeReadinessDoesNotWaitForASync(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.mu.Lock() // a sync in progress
	p.OnNodesNotReady(sets.New("node-b"))
	p.mu.Unlock()
	if p.notReadyNodes.Len() != 0 {
		t.Fatalf("taken before a sync: %v", sets.List(p.notReadyNodes))
	}
	p.mu.Lock()
	p.takeNodeReadiness()
	p.mu.Unlock()
	if !p.notReadyNodes.Equal(sets.New("node-b")) || !p.needFull || !p.desiredStale {
		t.Errorf("after the sync took it: notReady %v, needFull %v, desiredStale %v", sets.List(p.notReadyNodes), p.needFull, p.desiredStale)
	}
}
