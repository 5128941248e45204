package ipvs

import (
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

// OnNodesNotReady is part of NodeReadinessHandler. A change rebuilds the
// whole desired state on the next sync (rare: node readiness changes).
func (p *Proxier) OnNodesNotReady(names sets.Set[string]) {
	p.mu.Lock()
	if p.notReadyNodes.Equal(names) {
		p.mu.Unlock()
		return
	}
	p.notReadyNodes = names.Clone()
	p.needFull = true
	p.desiredStale = true
	p.mu.Unlock()
	p.logger.V(2).Info("Nodes not Ready changed", "notReady", sets.List(names))
	if p.initialized.Load() {
		p.Sync()
	}
}
