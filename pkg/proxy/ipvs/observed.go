package ipvs

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// observedState is what the kernel holds for our family, read once per sync.
type observedState struct {
	services map[ipvs.ServiceKey]ipvs.VirtualServer
	// bound are our family's addresses on kube-ipvs0.
	bound map[netip.Addr]struct{}
	// otherAddrs are our family's addresses on every other device.
	otherAddrs map[netip.Addr]struct{}
	// sets are the kernel's sets by name (all of them; we touch only ours).
	sets map[string]ipset.Contents
}

func inFamily(a netip.Addr, family v1.IPFamily) bool {
	return a.IsValid() && a.Unmap().Is4() == (family != v1.IPv6Protocol)
}

// readObserved takes one snapshot of the IPVS table, the addresses and the sets.
func readObserved(deps *Deps, family v1.IPFamily) (*observedState, error) {
	o := &observedState{
		services:   make(map[ipvs.ServiceKey]ipvs.VirtualServer),
		bound:      make(map[netip.Addr]struct{}),
		otherAddrs: make(map[netip.Addr]struct{}),
		sets:       make(map[string]ipset.Contents),
	}
	vss, err := deps.IPVS.List()
	if err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	for _, vs := range vss {
		if inFamily(vs.Address, family) {
			o.services[vs.ServiceKey] = vs
		}
	}
	if err := o.readAddresses(deps, family); err != nil {
		return nil, err
	}
	sets, err := deps.IPSet.List()
	if err != nil {
		return nil, fmt.Errorf("read ipsets: %w", err)
	}
	for _, s := range sets {
		o.sets[s.Name] = s
	}
	return o, nil
}

func (o *observedState) readAddresses(deps *Deps, family v1.IPFamily) error {
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
	others, err := deps.NetDev.LocalAddresses(DummyDevice)
	if err != nil {
		return fmt.Errorf("read node addresses: %w", err)
	}
	for _, a := range others {
		if inFamily(a, family) {
			o.otherAddrs[a.Unmap()] = struct{}{}
		}
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
