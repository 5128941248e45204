package ipvs

import (
	"sync"

	"k8s.io/apimachinery/pkg/util/sets"
)

// NodeReadinessHandler is implemented by proxiers that act on lost nodes:
// the immediate termination policy deletes at once the real servers of
// endpoints that stopped being ready on a node the API server reports as
// not Ready (a lost node), instead of draining them.
type NodeReadinessHandler interface {
	// OnNodesNotReady is given, on every change, the names of all the
	// nodes whose Ready condition is False or Unknown (or missing).
	OnNodesNotReady(names sets.Set[string])
}

var _ NodeReadinessHandler = &Proxier{}

// nodeReadiness is what the Node watch last reported. It has its own lock:
// the watch's handler must not wait for a sync (one can take seconds on a
// large node), nor hold up the other family's proxier behind it.
type nodeReadiness struct {
	mu       sync.Mutex
	notReady sets.Set[string]
	changed  bool
}

// OnNodesNotReady is part of NodeReadinessHandler. A change rebuilds the
// whole desired state on the next sync (rare: node readiness changes).
func (p *Proxier) OnNodesNotReady(names sets.Set[string]) {
	r := &p.nodeReadiness
	r.mu.Lock()
	if r.notReady.Equal(names) {
		r.mu.Unlock()
		return
	}
	r.notReady, r.changed = names.Clone(), true
	r.mu.Unlock()
	p.logger.V(2).Info("Nodes not Ready changed", "notReady", sets.List(names))
	if p.initialized.Load() {
		p.Sync()
	}
}

// takeNodeReadiness brings a reported change into the sync (p.mu held).
func (p *Proxier) takeNodeReadiness() {
	r := &p.nodeReadiness
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.changed {
		return
	}
	p.notReadyNodes, r.changed = r.notReady, false
	p.needFull, p.desiredStale = true, true
}
