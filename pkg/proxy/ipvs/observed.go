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
	// fromWanted, when set, are its real servers instead of dests, all at
	// weight 1: a pin took them from the desired state, and list() makes
	// dests of them when first needed (a partial sync that re-reads them
	// never does).
	fromWanted destKeys
	lazy       bool
}

// list is the real servers, sorted by key.
func (s *observedService) list() destList {
	if s.lazy {
		s.dests, s.fromWanted, s.lazy = weightOne(s.fromWanted, s.fromWanted.len()), nil, false
	}
	return s.dests
}

func (s *observedService) has(k ipvs.DestinationKey) bool {
	if s.lazy {
		return s.fromWanted.has(k)
	}
	return s.dests.has(k)
}

// observedState is what the kernel holds for our family: read whole on a
// full sync, then kept current by the applier as it writes, so that a
// partial sync needs no read. A failed write makes the next sync full.
//
// It keeps only where the kernel differs from the desired state: an object
// the kernel holds exactly as the desired state wants it (a virtual server
// with its wanted real servers, all at weight 1; a bound address; a set
// member) is implied, not stored, so a node in sync holds its services
// once, not twice. An entry overrides: a nil virtual server, a false
// address or member, is one the kernel lacks. Right after a read nothing is
// implied (implied is nil) until the full sync's plan is made
// (assumeWritten); from then on, every change of the desired state at a key
// is preceded by a pin of that key (the kernel's view made explicit), and
// fold drops again what matches.
type observedState struct {
	family   v1.IPFamily
	services map[ipvs.ServiceKey]*observedService
	// bound are our family's addresses on kube-ipvs0.
	bound map[netip.Addr]bool
	// otherAddrs are our family's addresses on every other device.
	otherAddrs map[netip.Addr]struct{}
	// sets are our sets by kernel name.
	sets map[string]*observedSet
	// implied is the desired state the kernel matches where no entry says
	// otherwise; nil: nothing is implied.
	implied *desiredState
	// pinned are the keys pinned since the last fold (kernel set names).
	pinnedServices []ipvs.ServiceKey
	pinnedAddrs    []netip.Addr
	pinnedEntries  []setEntry
}

type observedSet struct {
	set ipset.Set
	// name is the set's IPv4 name (the desired state's).
	name    string
	entries map[ipset.Entry]bool
	// whole: entries lists every member (a set just read); none is implied.
	whole bool
}

func inFamily(a netip.Addr, family v1.IPFamily) bool {
	return a.IsValid() && a.Unmap().Is4() == (family != v1.IPv6Protocol)
}

// readObserved takes one snapshot of the IPVS table, the addresses and our sets.
func readObserved(deps *Deps, family v1.IPFamily) (*observedState, error) {
	o := &observedState{
		family:   family,
		services: make(map[ipvs.ServiceKey]*observedService),
		bound:    make(map[netip.Addr]bool),
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
			o.bound[a.Unmap()] = true
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
	// Only our family's sets: the other family's proxier reads its own, and
	// at 5k Services each has thousands of members.
	sets, err := deps.IPSet.List(func(name string) bool {
		_, ours := ownSetName(name, family)
		return ours
	})
	if err != nil {
		return fmt.Errorf("read ipsets: %w", err)
	}
	for _, s := range sets {
		name, ours := ownSetName(s.Name, family)
		if !ours {
			continue
		}
		os := &observedSet{set: s.Set, name: name, entries: make(map[ipset.Entry]bool, len(s.Entries)), whole: true}
		for _, e := range s.Entries {
			os.entries[e] = true
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

// ownSetName is the IPv4 name of one of our sets, by its kernel name.
func ownSetName(kernelName string, family v1.IPFamily) (string, bool) {
	for _, def := range setDefinitions() {
		if setName(def.name, family) == kernelName {
			return def.name, true
		}
	}
	return "", false
}
