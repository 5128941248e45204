package ipvs

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// observedService is a virtual server as the kernel holds it.
type observedService struct {
	service ipvs.Service
	dests   destList
}

// observedState is what the kernel holds for our family: read whole on a
// full sync, then kept current by the applier as it writes, so that a
// partial sync needs no read. A failed write makes the next sync full.
type observedState struct {
	services map[ipvs.ServiceKey]*observedService
	// bound are our family's addresses on kube-ipvs0.
	bound map[netip.Addr]struct{}
	// otherAddrs are our family's addresses on every other device.
	otherAddrs map[netip.Addr]struct{}
	// sets are our sets by kernel name.
	sets map[string]*observedSet
}

type observedSet struct {
	set     ipset.Set
	entries map[ipset.Entry]struct{}
}

func inFamily(a netip.Addr, family v1.IPFamily) bool {
	return a.IsValid() && a.Unmap().Is4() == (family != v1.IPv6Protocol)
}

// readObserved takes one snapshot of the IPVS table, the addresses and our sets.
func readObserved(deps *Deps, family v1.IPFamily) (*observedState, error) {
	o := &observedState{
		services: make(map[ipvs.ServiceKey]*observedService),
		bound:    make(map[netip.Addr]struct{}),
		sets:     make(map[string]*observedSet),
	}
	vss, err := deps.IPVS.ListFamily(family == v1.IPv6Protocol)
	if err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	for _, vs := range vss {
		o.services[vs.ServiceKey] = newObservedService(vs.Service, vs.Destinations)
	}
	if err := o.readBound(deps, family); err != nil {
		return nil, err
	}
	if o.otherAddrs, err = readOtherAddrs(deps, family); err != nil {
		return nil, err
	}
	return o, o.readSets(deps, family)
}

// newObservedService takes dests (read from the kernel) over.
func newObservedService(s ipvs.Service, dests []ipvs.Destination) *observedService {
	return &observedService{service: s, dests: newDestList(dests)}
}

func (o *observedState) readBound(deps *Deps, family v1.IPFamily) error {
	bound, err := deps.NetDev.Addresses(DummyDevice)
	if err != nil {
		return fmt.Errorf("read addresses of %s: %w", DummyDevice, err)
	}
	for _, a := range bound {
		// The kernel gives the dummy device an fe80:: address when it goes
		// up; it is not ours to remove.
		if inFamily(a, family) && !a.IsLinkLocalUnicast() {
			o.bound[a.Unmap()] = struct{}{}
		}
	}
	return nil
}

// readOtherAddrs reads our family's addresses outside kube-ipvs0.
func readOtherAddrs(deps *Deps, family v1.IPFamily) (map[netip.Addr]struct{}, error) {
	others, err := deps.NetDev.LocalAddresses(DummyDevice)
	if err != nil {
		return nil, fmt.Errorf("read node addresses: %w", err)
	}
	out := make(map[netip.Addr]struct{}, len(others))
	for _, a := range others {
		if inFamily(a, family) {
			out[a.Unmap()] = struct{}{}
		}
	}
	return out, nil
}

func (o *observedState) readSets(deps *Deps, family v1.IPFamily) error {
	sets, err := deps.IPSet.List()
	if err != nil {
		return fmt.Errorf("read ipsets: %w", err)
	}
	ours := make(map[string]bool)
	for _, def := range setDefinitions() {
		ours[setName(def.name, family)] = true
	}
	for _, s := range sets {
		if !ours[s.Name] {
			continue
		}
		os := &observedSet{set: s.Set, entries: make(map[ipset.Entry]struct{}, len(s.Entries))}
		for _, e := range s.Entries {
			os.entries[e] = struct{}{}
		}
		o.sets[s.Name] = os
	}
	return nil
}

// nodePortAddresses picks the addresses NodePorts listen on: those in the
// configured CIDRs, or all of the node's when none are configured; never
// loopback, never IPv6 link-local.
func nodePortAddresses(others map[netip.Addr]struct{}, cidrs []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for a := range others {
		if a.IsLoopback() || (a.Is6() && a.IsLinkLocalUnicast()) {
			continue
		}
		if len(cidrs) == 0 || containedIn(a, cidrs) {
			out = append(out, a)
		}
	}
	sortAddrs(out)
	return out
}

func containedIn(a netip.Addr, cidrs []netip.Prefix) bool {
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

func sameAddrSet(a, b map[netip.Addr]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

func (o *observedState) hasEntry(set string, e ipset.Entry) bool {
	s := o.sets[set]
	if s == nil {
		return false
	}
	_, ok := s.entries[e]
	return ok
}
