package ipvs

import (
	"hash/maphash"
	"iter"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// desiredState is the union of every service port's contribution, with
// reference counts where two ports can want the same thing (an external
// IP shared by two services, a node port set member, a bound address).
type desiredState struct {
	// byService holds the contributions of each Service's ports (a Service
	// has few), so that a partial sync finds a changed Service's ports
	// without scanning every port.
	byService portIndex
	// services holds, per virtual server, the contributions that want it;
	// the first one wins (two Services claiming one ip:port is a
	// misconfiguration; upstream lets the last writer win).
	services wantedIndex
	bound    addrCounts
	// clusterIPMembers counts the virtual servers that are a cluster IP
	// (KUBE-CLUSTER-IP's members; see wants).
	clusterIPMembers int
	sets             map[string]map[ipset.Entry]int // by IPv4 set name
	lbNoNodeAccess   map[ipset.Entry]int
	// gone holds the policy (immediate or not) of virtual servers no
	// longer wanted, as the last contribution that wanted them had it,
	// until the kernel no longer holds them: a deleted Service's
	// annotation is gone with it, yet its flows are flushed by its policy.
	gone map[ipvs.ServiceKey]bool
	// noLocal counts, per traffic policy label, the ports of each Service
	// that have no local endpoints (contribution.noLocalInternal/External):
	// upstream's gauge counts Services.
	noLocal map[string]map[types.NamespacedName]int
}

// scope lists what changed in the desired state since the last sync: the
// only keys a partial sync compares with the kernel.
type scope struct {
	services map[ipvs.ServiceKey]struct{}
	addrs    map[netip.Addr]struct{}
	entries  map[setEntry]struct{}
}

// newScope is sized for services changed virtual servers (each changed
// service port has at least one; its addresses and set members change
// only when it comes or goes).
func newScope(services int) *scope {
	return &scope{services: make(map[ipvs.ServiceKey]struct{}, services), addrs: map[netip.Addr]struct{}{}, entries: map[setEntry]struct{}{}}
}

// The touch methods record a key whose wanted state may have changed. A
// nil scope records nothing: a full rebuild compares everything, and
// recording its every key would cost as much again as the desired state.
func (sc *scope) touchService(k ipvs.ServiceKey) {
	if sc != nil {
		sc.services[k] = struct{}{}
	}
}

func (sc *scope) touchAddr(a netip.Addr) {
	if sc != nil {
		sc.addrs[a] = struct{}{}
	}
}

func (sc *scope) touchEntry(e setEntry) {
	if sc != nil {
		sc.entries[e] = struct{}{}
	}
}

// newDesiredState makes an empty desired state sized for ports service
// ports (each has a cluster IP: a virtual server, a bound address and a
// member of the cluster IP set and of KUBE-IPVS-IPS).
func newDesiredState(ports int, family v1.IPFamily) *desiredState {
	seed := maphash.MakeSeed()
	d := &desiredState{
		byService:      newPortIndex(seed, ports),
		services:       newWantedIndex(seed, ports),
		bound:          newAddrCounts(ports, family),
		sets:           make(map[string]map[ipset.Entry]int),
		lbNoNodeAccess: make(map[ipset.Entry]int),
		gone:           make(map[ipvs.ServiceKey]bool),
		noLocal:        map[string]map[types.NamespacedName]int{trafficPolicyInternal: {}, trafficPolicyExternal: {}},
	}
	for _, def := range setDefinitions() {
		if def.name != setIPVSAddresses && def.name != setClusterIP { // see wants
			d.sets[def.name] = make(map[ipset.Entry]int)
		}
	}
	return d
}

// service is the virtual server wanted at key, or nil.
func (d *desiredState) service(key ipvs.ServiceKey) *wantedService {
	return d.services.first(key)
}

// immediateForGone is the policy of a virtual server no longer wanted:
// that of the service port that last wanted it, or, for one the proxier
// never wanted (left by an earlier run), the gate's.
func (d *desiredState) immediateForGone(key ipvs.ServiceKey, cfg *Config) bool {
	if immediate, ok := d.gone[key]; ok {
		return immediate
	}
	return cfg.ImmediateTermination
}

// inheritGone carries over to a rebuilt desired state the policies of
// the virtual servers the old one wanted (or had retired) and it does not.
func (d *desiredState) inheritGone(old *desiredState) {
	if old == nil {
		return
	}
	for key, imm := range old.gone {
		if d.service(key) == nil {
			d.gone[key] = imm
		}
	}
	for key := range old.serviceKeys() {
		if d.service(key) == nil {
			d.gone[key] = old.service(key).immediate()
		}
	}
}

// forgetGone drops the policies of retired virtual servers the kernel no
// longer holds.
func (d *desiredState) forgetGone(kernel *observedState) {
	for key := range d.gone {
		if !kernel.hasService(key) {
			delete(d.gone, key)
		}
	}
}

// wants says whether a set (IPv4 name) is to hold a member. Two sets are
// not kept twice: KUBE-IPVS-IPS holds exactly the bound addresses,
// KUBE-CLUSTER-IP exactly the cluster IPs' virtual servers.
func (d *desiredState) wants(set string, e ipset.Entry) bool {
	switch set {
	case setIPVSAddresses:
		return e == ipset.Entry{IP: e.IP} && d.bound.has(e.IP)
	case setClusterIP:
		key := ipvs.ServiceKey{Address: e.IP, Protocol: protocolOf(e.Protocol), Port: e.Port}
		return e == clusterIPMember(key).entry && d.clusterIPAt(key)
	}
	return d.sets[set][e] > 0
}

// setSize is the number of members a set (IPv4 name) is to hold.
func (d *desiredState) setSize(set string) int {
	switch set {
	case setIPVSAddresses:
		return d.bound.len()
	case setClusterIP:
		return d.clusterIPMembers
	}
	return len(d.sets[set])
}

// clusterIPAt says whether a service port's cluster IP is the virtual
// server at key.
func (d *desiredState) clusterIPAt(key ipvs.ServiceKey) bool {
	at := false
	d.services.each(key, func(ws *wantedService) {
		at = at || ws.port.clusterIP && ws.port.first == ws
	})
	return at
}

// clusterIPMember is the KUBE-CLUSTER-IP member of a cluster IP's virtual server.
func clusterIPMember(key ipvs.ServiceKey) setEntry {
	return setEntry{set: setClusterIP, entry: ipset.Entry{IP: key.Address, Protocol: protocolName(key.Protocol), Port: key.Port}}
}

// members are the members a set (IPv4 name) is to hold.
func (d *desiredState) members(set string) iter.Seq[ipset.Entry] {
	return func(yield func(ipset.Entry) bool) {
		switch set {
		case setIPVSAddresses:
			for a := range d.bound.all {
				if !yield(ipset.Entry{IP: a}) {
					return
				}
			}
			return
		case setClusterIP:
			for key := range d.serviceKeys() {
				if d.clusterIPAt(key) && !yield(clusterIPMember(key).entry) {
					return
				}
			}
			return
		}
		for e := range d.sets[set] {
			if !yield(e) {
				return
			}
		}
	}
}

// replace swaps a service port's contribution (nil removes it) and records
// in sc (when not nil) every key whose wanted state may have changed.
func (d *desiredState) replace(name proxy.ServicePortName, c *contribution, sc *scope) {
	nn := name.NamespacedName
	if old := d.byService.replace(name, c); old != nil {
		d.apply(old, -1, sc)
		d.countNoLocal(nn, old, -1)
	}
	if c != nil {
		d.apply(c, +1, sc)
		d.countNoLocal(nn, c, +1)
	}
}

// contribution is a service port's contribution, or nil.
func (d *desiredState) contribution(name proxy.ServicePortName) *contribution {
	return d.byService.get(name)
}

// ports appends the service ports of a Service that contribute to out.
func (d *desiredState) ports(out []proxy.ServicePortName, nn types.NamespacedName) []proxy.ServicePortName {
	d.byService.each(nn, func(c *contribution) { out = append(out, c.name) })
	return out
}

// apply adds (delta +1) or removes (-1) one contribution.
func (d *desiredState) apply(c *contribution, delta int, sc *scope) {
	c.eachService(func(ws *wantedService) { d.applyService(ws, delta, sc) })
	c.eachBound(func(a netip.Addr) {
		if d.bound.add(a, delta) {
			sc.touchAddr(a)
			// KUBE-IPVS-IPS holds exactly the bound addresses.
			sc.touchEntry(setEntry{set: setIPVSAddresses, entry: ipset.Entry{IP: a}})
		}
	})
	for _, e := range c.entries() { // the cluster IP's member: see above
		if count(d.sets[e.set], e.entry, delta) {
			sc.touchEntry(e)
		}
	}
	for _, e := range c.lbNoNodeAccess() {
		count(d.lbNoNodeAccess, e, delta)
	}
}

// applyService adds (delta +1) or removes (-1) one virtual server of a
// contribution.
func (d *desiredState) applyService(ws *wantedService, delta int, sc *scope) {
	key := ws.service.ServiceKey
	isClusterIP := ws == ws.port.first && ws.port.clusterIP
	hadMember := isClusterIP && d.clusterIPAt(key)
	if delta > 0 {
		d.services.add(ws)
		if len(d.gone) > 0 {
			delete(d.gone, key)
		}
	} else if d.services.remove(ws) {
		d.gone[key] = ws.immediate()
	}
	sc.touchService(key)
	if isClusterIP && d.clusterIPAt(key) != hadMember {
		d.clusterIPMembers += delta
		sc.touchEntry(clusterIPMember(key))
	}
}

func (d *desiredState) countNoLocal(nn types.NamespacedName, c *contribution, delta int) {
	if c.noLocalInternal {
		count(d.noLocal[trafficPolicyInternal], nn, delta)
	}
	if c.noLocalExternal {
		count(d.noLocal[trafficPolicyExternal], nn, delta)
	}
}

// servicesWithoutLocalEndpoints is the number of Services with a Local
// policy of the kind (trafficPolicyInternal, trafficPolicyExternal) and
// no local endpoints.
func (d *desiredState) servicesWithoutLocalEndpoints(policy string) int {
	return len(d.noLocal[policy])
}

// count adjusts a reference count and says whether the key appeared or vanished.
func count[K comparable, N int | int32](m map[K]N, k K, delta N) bool {
	n := m[k] + delta
	if n <= 0 {
		delete(m, k)
	} else {
		m[k] = n
	}
	return (n <= 0) != (n-delta <= 0)
}

// serviceKeys are the keys of the wanted virtual servers.
func (d *desiredState) serviceKeys() iter.Seq[ipvs.ServiceKey] {
	return d.services.keys
}
