package ipvs

import (
	"maps"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	netutils "k8s.io/utils/net"
)

// endpointNodes indexes the node of every not-ready endpoint of our family,
// by Service, from the EndpointSlices the proxier receives: upstream's
// endpoint info carries no node name, and the lost-node rule needs it only
// for endpoints that are not ready (few, unless nodes are lost), so ready
// ones cost nothing. Informer callbacks update it while a sync may run:
// it has its own lock, and a sync reads a snapshot.
type endpointNodes struct {
	family discovery.AddressType

	mu sync.Mutex
	// bySlice is each slice's share; byService their union, replaced (never
	// modified) on change so that a snapshot may share it.
	bySlice   map[types.NamespacedName]map[string]map[netip.Addr]string
	byService map[types.NamespacedName]map[netip.Addr]string
}

func newEndpointNodes(family v1.IPFamily) *endpointNodes {
	af := discovery.AddressTypeIPv4
	if family == v1.IPv6Protocol {
		af = discovery.AddressTypeIPv6
	}
	return &endpointNodes{family: af, bySlice: map[types.NamespacedName]map[string]map[netip.Addr]string{},
		byService: map[types.NamespacedName]map[netip.Addr]string{}}
}

// update records a slice's not-ready endpoints (none when removed). It runs
// before the change tracker sees the slice, so that a sync that sees the
// change finds the nodes too.
func (x *endpointNodes) update(s *discovery.EndpointSlice, removed bool) {
	svcName := s.Labels[discovery.LabelServiceName]
	if s.AddressType != x.family || svcName == "" {
		return // the change tracker ignores it too
	}
	svc := types.NamespacedName{Namespace: s.Namespace, Name: svcName}
	var nodes map[netip.Addr]string
	if !removed {
		nodes = notReadyNodesOf(s)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	slices := x.bySlice[svc]
	if len(nodes) == 0 && len(slices[s.Name]) == 0 {
		return // the usual case: every endpoint ready, before and now
	}
	if slices == nil {
		slices = map[string]map[netip.Addr]string{}
		x.bySlice[svc] = slices
	}
	if len(nodes) == 0 {
		delete(slices, s.Name)
	} else {
		slices[s.Name] = nodes
	}
	x.reindex(svc)
}

// reindex replaces a Service's union. An address in two slices on two nodes
// (a pod IP reused on another node, for a moment) has no node: one of its
// pods may be alive on a Ready node, so it is never taken for a lost one
// (whichever slice the map order gave first decided that before).
func (x *endpointNodes) reindex(svc types.NamespacedName) {
	if len(x.bySlice[svc]) == 0 {
		delete(x.bySlice, svc)
		delete(x.byService, svc)
		return
	}
	union := map[netip.Addr]string{}
	for _, nodes := range x.bySlice[svc] {
		for addr, node := range nodes {
			if other, seen := union[addr]; seen && other != node {
				node = ""
			}
			union[addr] = node
		}
	}
	x.byService[svc] = union
}

// snapshot is the index as of now; the caller may keep it.
func (x *endpointNodes) snapshot() map[types.NamespacedName]map[netip.Addr]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return maps.Clone(x.byService)
}

// notReadyNodesOf maps a slice's not-ready endpoints to their nodes
// (Ready unset counts as ready, as upstream's cache reads it). An endpoint
// is its first address, parsed sloppily, as upstream's cache reads it too.
func notReadyNodesOf(s *discovery.EndpointSlice) map[netip.Addr]string {
	var out map[netip.Addr]string
	for _, e := range s.Endpoints {
		if e.Conditions.Ready == nil || *e.Conditions.Ready || e.NodeName == nil || *e.NodeName == "" || len(e.Addresses) == 0 {
			continue
		}
		addr, ok := netip.AddrFromSlice(netutils.ParseIPSloppy(e.Addresses[0]))
		if !ok {
			continue
		}
		if out == nil {
			out = map[netip.Addr]string{}
		}
		out[addr.Unmap()] = *e.NodeName
	}
	return out
}
