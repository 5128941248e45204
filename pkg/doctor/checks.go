package doctor

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// checkRealServers reports real servers whose endpoint is gone or not
// serving. Without cluster data it can only list the weight-0 ones.
func (d *diagnosis) checkRealServers() {
	for _, vs := range d.ours() {
		var refs []servicePortRef
		if d.idx != nil {
			refs = d.idx.lookup(vs.ServiceKey)
			if len(refs) == 0 {
				continue // checkVirtualServers reports the whole virtual server
			}
		}
		for _, dst := range vs.Destinations {
			if f, ok := d.checkRealServer(vs.ServiceKey, dst, refs); ok {
				d.add(f)
			}
		}
	}
}

func (d *diagnosis) checkRealServer(svc ipvs.ServiceKey, dst ipvs.Destination, refs []servicePortRef) (Finding, bool) {
	f := Finding{
		Object: realServerName(svc, dst.DestinationKey), Service: refNames(refs),
		Connections: &Connections{Active: dst.ActiveConn, Inactive: dst.InactiveConn},
	}
	stale := &Repair{
		DeleteRealServer: &RealServer{Service: svc, Destination: dst.DestinationKey},
		DeleteConntrack:  []conntrack.Filter{realServerFlush(svc, dst.DestinationKey)},
	}
	if d.idx == nil {
		if dst.Weight != 0 {
			return Finding{}, false
		}
		f.Kind, f.Severity = KindDrainingRealServer, SeverityWarning
		f.Message = "Weight 0: new connections should avoid it, but reused source ports may still reach it. " +
			"Without --kubeconfig the doctor cannot tell whether its endpoint still exists."
		return f, true
	}
	state, found := d.idx.endpoint(refs, dst.DestinationKey)
	switch {
	case dst.Weight != 0 && found:
		return Finding{}, false
	case dst.Weight != 0:
		f.Kind, f.Severity, f.Repair = KindRealServerWithoutEndpoint, SeverityProblem, stale
		f.Message = fmt.Sprintf("Weight %d but its endpoint no longer exists: new connections are still sent to it. "+
			"The proxier has not caught up (is it running?).", dst.Weight)
	case !found:
		f.Kind, f.Severity, f.Repair = KindStaleRealServer, SeverityProblem, stale
		f.Message = "Weight 0 and its endpoint no longer exists: connections that reuse a source port can still " +
			"reach it until it is deleted."
	case !state.serving:
		f.Kind, f.Severity, f.Repair = KindStaleRealServer, SeverityProblem, stale
		f.Message = "Weight 0 and its endpoint is " + endpointWords(state) + ": connections that reuse a source " +
			"port can still reach it until it is deleted."
	default:
		f.Kind, f.Severity = KindDrainingRealServer, SeverityInfo
		f.Message = "Weight 0 while its endpoint is " + endpointWords(state) + ": draining; the proxier deletes " +
			"it when its connections are gone."
	}
	return f, true
}

func endpointWords(s endpointState) string {
	words := "not ready"
	if s.ready {
		words = "ready"
	}
	if s.serving {
		words += ", serving"
	} else {
		words += ", not serving"
	}
	if s.terminating {
		words += ", terminating"
	}
	return words
}

// checkVirtualServers reports virtual servers no Service explains.
func (d *diagnosis) checkVirtualServers() {
	if d.idx == nil {
		return
	}
	for _, vs := range d.ours() {
		if len(d.idx.lookup(vs.ServiceKey)) > 0 {
			continue
		}
		d.add(Finding{
			Kind: KindVirtualServerWithoutService, Severity: SeverityProblem, Object: vs.ServiceKey.String(),
			Message: fmt.Sprintf("No Service has this address and port (cluster, external or load-balancer IP, or "+
				"node port), yet %d real servers get its traffic. Delete it (ipvsadm -D) if nothing else on this "+
				"node owns it, or pass its range in --exclude-cidrs.", len(vs.Destinations)),
		})
	}
}

// checkAddresses reports addresses bound on the dummy device for no
// Service (or, without cluster data, for no virtual server): the node
// answers them itself.
func (d *diagnosis) checkAddresses() {
	withServer := map[netip.Addr]bool{}
	for _, vs := range d.snap.VirtualServers {
		withServer[vs.Address] = true
	}
	for _, a := range d.snap.DummyAddresses {
		if a.IsLinkLocalUnicast() || d.excluded(a) {
			continue
		}
		f := Finding{Kind: KindAddressWithoutService, Severity: SeverityProblem,
			Object: fmt.Sprintf("%s on %s", a, d.snap.DummyDevice)}
		switch {
		case d.idx != nil && !d.idx.serviceAddrs[a]:
			f.Message = "No Service has this address: the node accepts packets to it as its own. " +
				"Delete it (ip addr del) if nothing else on this node owns it."
		case d.idx == nil && !withServer[a]:
			f.Message = "No virtual server uses this address: the node accepts packets to it as its own."
		default:
			continue
		}
		d.add(f)
	}
}

// checkMissingServices reports Service cluster IP ports without a virtual
// server or without their address on the dummy device, for the address
// families this node's proxier programs.
func (d *diagnosis) checkMissingServices() {
	if d.idx == nil {
		return
	}
	have := map[ipvs.ServiceKey]bool{}
	for _, vs := range d.snap.VirtualServers {
		have[vs.ServiceKey] = true
	}
	bound := map[netip.Addr]bool{}
	for _, a := range d.snap.DummyAddresses {
		bound[a] = true
	}
	families := d.families()
	keys := slices.SortedFunc(maps.Keys(d.idx.clusterIPs), compareServiceKeys)
	unbound := map[netip.Addr]bool{}
	for _, key := range keys {
		ref := d.idx.clusterIPs[key]
		if !families[key.Address.Is4()] || d.excluded(key.Address) || !knownProtocol(key.Protocol) {
			continue
		}
		if !have[key] {
			d.add(Finding{Kind: KindServiceMissingFromIPVS, Severity: SeverityProblem, Object: key.String(),
				Service: ref.String(), Message: "The Service's cluster IP port has no virtual server: connections " +
					"to it from this node and its pods fail. The proxier has not programmed it (is it running?)."})
		}
		if !bound[key.Address] && d.snap.DummyPresent && !unbound[key.Address] {
			unbound[key.Address] = true
			d.add(Finding{Kind: KindServiceAddressNotBound, Severity: SeverityProblem,
				Object: fmt.Sprintf("%s on %s", key.Address, d.snap.DummyDevice), Service: ref.String(),
				Message: "The Service's cluster IP is not bound on the dummy device: IPVS does not see " +
					"connections to it from this node."})
		}
	}
	if !d.snap.DummyPresent && len(keys) > 0 {
		d.add(Finding{Kind: KindServiceAddressNotBound, Severity: SeverityProblem, Object: d.snap.DummyDevice,
			Message: "The dummy device that holds the Service addresses does not exist: the proxier is not " +
				"running or has been cleaned up."})
	}
}

func knownProtocol(p ipvs.Protocol) bool {
	return p == ipvs.TCP || p == ipvs.UDP || p == ipvs.SCTP
}

// families says which address families (keyed by Is4) the node's proxier
// programs: those of its virtual servers and bound addresses, or both when
// it programs nothing at all.
func (d *diagnosis) families() map[bool]bool {
	fam := map[bool]bool{}
	for _, vs := range d.ours() {
		fam[vs.Address.Is4()] = true
	}
	for _, a := range d.snap.DummyAddresses {
		if !a.IsLinkLocalUnicast() {
			fam[a.Is4()] = true
		}
	}
	if len(fam) == 0 {
		return map[bool]bool{true: true, false: true}
	}
	return fam
}

// checkUDPConntrack reports UDP conntrack entries of a virtual server whose
// reply comes from an address that is no longer one of its real servers
// (and, with cluster data, not a serving endpoint either).
func (d *diagnosis) checkUDPConntrack() {
	servers := map[ipvs.ServiceKey]ipvs.VirtualServer{}
	for _, vs := range d.ours() {
		servers[vs.ServiceKey] = vs
	}
	stale := map[RealServer]int{}
	for _, e := range d.snap.UDPConntrack {
		if rs, ok := d.staleUDPEntry(servers, e); ok {
			stale[rs]++
		}
	}
	for _, rs := range slices.SortedFunc(maps.Keys(stale), compareRealServers) {
		var refs []servicePortRef
		if d.idx != nil {
			refs = d.idx.lookup(rs.Service)
		}
		d.add(Finding{
			Kind: KindStaleUDPConntrack, Severity: SeverityProblem, Object: realServerName(rs.Service, rs.Destination),
			Service: refNames(refs),
			Message: fmt.Sprintf("%d UDP conntrack entries still send this Service's traffic to an endpoint that "+
				"is no longer a real server: clients talk to a pod that is gone until the entries expire "+
				"(every packet renews them).", stale[rs]),
			Repair: &Repair{DeleteConntrack: []conntrack.Filter{realServerFlush(rs.Service, rs.Destination)}},
		})
	}
}

func (d *diagnosis) staleUDPEntry(servers map[ipvs.ServiceKey]ipvs.VirtualServer, e conntrack.Entry) (RealServer, bool) {
	key := ipvs.ServiceKey{Address: e.OrigDst.Unmap(), Protocol: ipvs.UDP, Port: e.OrigDstPort}
	vs, ok := servers[key]
	dst := ipvs.DestinationKey{Address: e.ReplySrc.Unmap(), Port: e.ReplySrcPort}
	if e.Protocol != conntrack.ProtoUDP || !ok || (dst.Address == key.Address && dst.Port == key.Port) {
		return RealServer{}, false // not through a virtual server, or not rewritten by it
	}
	if slices.ContainsFunc(vs.Destinations, func(d ipvs.Destination) bool { return d.DestinationKey == dst }) {
		return RealServer{}, false
	}
	if d.idx != nil {
		if state, found := d.idx.endpoint(d.idx.lookup(key), dst); found && state.serving {
			return RealServer{}, false
		}
	}
	return RealServer{Service: key, Destination: dst}, true
}

func compareServiceKeys(a, b ipvs.ServiceKey) int {
	return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

func compareRealServers(a, b RealServer) int {
	return cmp.Or(compareServiceKeys(a.Service, b.Service), a.Destination.Address.Compare(b.Destination.Address),
		cmp.Compare(a.Destination.Port, b.Destination.Port))
}
