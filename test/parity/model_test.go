package parity

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/kubernetes/pkg/proxy"

	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

const (
	nodeName  = "node-a"
	otherNode = "node-b"
	namespace = "ns"
	zoneLabel = "topology.kubernetes.io/zone"
)

// nodeIPOf is the node's primary IP of a family (on eth0 in every scenario).
func nodeIPOf(family v1.IPFamily) netip.Addr {
	if family == v1.IPv6Protocol {
		return netip.MustParseAddr("fd00::10")
	}
	return netip.MustParseAddr("192.168.0.10")
}

// environment is what a scenario keeps for its whole run: the node and
// the proxiers' configuration, and state left by someone else.
type environment struct {
	families          []v1.IPFamily
	links             []link
	nodePortAddresses []string
	excludeCIDRs      []string
	scheduler         string
	// foreignServices are in the IPVS table before the proxiers start.
	foreignServices []foreignService
	// foreignBound are on kube-ipvs0 before the proxiers start.
	foreignBound []netip.Addr
}

type foreignService struct {
	proto     v1.Protocol
	addr      netip.Addr
	port      uint16
	scheduler string // "rr" when empty
	dests     []foreignDest
}

type foreignDest struct {
	to     netip.AddrPort
	weight int
}

func (f foreignService) schedulerOrRR() string {
	if f.scheduler == "" {
		return "rr"
	}
	return f.scheduler
}

func (f foreignService) key() string { return vsKey(string(f.proto), f.addr, f.port) }

func (e *environment) String() string {
	var links []string
	for _, l := range e.links {
		links = append(links, fmt.Sprintf("%s%v", l.name, l.addrs))
	}
	return fmt.Sprintf("families=%v links=%v nodePortAddresses=%v excludeCIDRs=%v scheduler=%q foreign=%d bound=%v",
		e.families, links, e.nodePortAddresses, e.excludeCIDRs, e.scheduler, len(e.foreignServices), e.foreignBound)
}

// cluster is the API state at one step.
type cluster struct {
	services map[string]*v1.Service              // by name, all in namespace ns
	slices   map[string]*discovery.EndpointSlice // by name
	labels   map[string]string                   // the node's labels
}

func newCluster() *cluster {
	return &cluster{services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}}
}

func (c *cluster) clone() *cluster {
	n := newCluster()
	for k, s := range c.services {
		n.services[k] = s.DeepCopy()
	}
	for k, s := range c.slices {
		n.slices[k] = s.DeepCopy()
	}
	n.labels = maps.Clone(c.labels)
	return n
}

// step is one update: the whole API state after it, and what changed.
type step struct {
	what    string
	cluster *cluster
	// restart, when set, replaces every proxier by a new one on the same
	// kernel state (with this scheduler when not empty), which then gets
	// the whole API state, as after a kube-proxy restart.
	restart *restart
}

type restart struct{ scheduler string }

// scenario is a node and a sequence of API states.
type scenario struct {
	name  string
	seed  uint64 // 0 for hand-written cases
	env   environment
	steps []step
	// conns, when set, is the number of connections on every real server
	// (hand-written cases); else connModel draws them from the name.
	conns *int
}

// side is one proxier implementation, a proxier per family.
type side interface {
	providers() map[v1.IPFamily]proxy.Provider
	state() ([]string, error)
}

func (u *upstreamSide) providers() map[v1.IPFamily]proxy.Provider { return u.providersByFamily }
func (o *oursSide) providers() map[v1.IPFamily]proxy.Provider     { return o.providersByFamily }

// start hands the initial state to a side's proxiers and lets them sync,
// as kube-proxy's informers do: topology, objects, then the synced calls.
func start(s side, c *cluster) {
	feed(s, newCluster(), c)
	for _, f := range families(s) {
		s.providers()[f].OnServiceSynced()
	}
	for _, f := range families(s) {
		s.providers()[f].OnEndpointSlicesSynced() // the first sync
	}
}

// syncNow makes every proxier of a side sync at once: OnServiceSynced syncs
// synchronously in both implementations (Sync only queues for SyncLoop).
func syncNow(s side) {
	for _, f := range families(s) {
		s.providers()[f].OnServiceSynced()
	}
}

func families(s side) []v1.IPFamily {
	return slices.Sorted(maps.Keys(s.providers()))
}

// feed sends the events that turn old into cur, as the informers would:
// Services to every family, EndpointSlices to the family of their address
// type (what upstream's metaproxier does).
func feed(s side, old, cur *cluster) {
	ps := s.providers()
	for _, name := range unionKeys(old.services, cur.services) {
		o, n := old.services[name], cur.services[name]
		for _, f := range families(s) {
			switch {
			case o == nil:
				ps[f].OnServiceAdd(n.DeepCopy())
			case n == nil:
				ps[f].OnServiceDelete(o.DeepCopy())
			case !equality.Semantic.DeepEqual(o, n):
				ps[f].OnServiceUpdate(o.DeepCopy(), n.DeepCopy())
			}
		}
	}
	for _, name := range unionKeys(old.slices, cur.slices) {
		o, n := old.slices[name], cur.slices[name]
		ref := n
		if ref == nil {
			ref = o
		}
		p, ok := ps[v1.IPFamily(ref.AddressType)]
		if !ok {
			continue
		}
		switch {
		case o == nil:
			p.OnEndpointSliceAdd(n.DeepCopy())
		case n == nil:
			p.OnEndpointSliceDelete(o.DeepCopy())
		case !equality.Semantic.DeepEqual(o, n):
			p.OnEndpointSliceUpdate(o.DeepCopy(), n.DeepCopy())
		}
	}
	if !maps.Equal(old.labels, cur.labels) {
		for _, p := range ps {
			p.OnTopologyChange(maps.Clone(cur.labels))
		}
	}
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// addImmediateVS adds to keys the virtual servers whose real servers ours
// deletes at once when their endpoints go away: those of Services with the
// immediate policy (annotation, else the gate). Node ports are keyed on any
// address.
func (c *cluster) addImmediateVS(keys map[string]bool, gate bool) {
	for _, svc := range c.services {
		if !immediatePolicy(svc, gate) {
			continue
		}
		for _, port := range svc.Spec.Ports {
			for _, addr := range serviceAddresses(svc) {
				if a, err := netip.ParseAddr(addr); err == nil {
					keys[vsKey(string(port.Protocol), a.Unmap(), uint16(port.Port))] = true
				}
			}
			if port.NodePort != 0 {
				keys[portKey(string(port.Protocol), port.NodePort)] = true
			}
		}
	}
}

// isImmediateVS looks a virtual server up in keys made by addImmediateVS.
func isImmediateVS(keys map[string]bool, vs string) bool {
	if keys[vs] {
		return true
	}
	proto, addrPort, _ := strings.Cut(vs, " ")
	ap, err := netip.ParseAddrPort(addrPort)
	return err == nil && keys[portKey(proto, int32(ap.Port()))]
}

// goingAway says whether ours deletes a real server of virtual server vs
// at once under the immediate policy: no Service serving vs has a live
// endpoint at dest (listed in one of its slices, and not terminating
// without serving).
func (c *cluster) goingAway(vs, dest string) bool {
	to, err := netip.ParseAddrPort(dest)
	if err != nil {
		return false
	}
	for _, svc := range c.services {
		if servesVS(svc, vs) && c.hasLiveEndpoint(svc.Name, to) {
			return false
		}
	}
	return true
}

// servesVS says whether one of a Service's ports is virtual server vs
// (node ports on any address).
func servesVS(svc *v1.Service, vs string) bool {
	keys := map[string]bool{}
	for _, port := range svc.Spec.Ports {
		for _, addr := range serviceAddresses(svc) {
			if a, err := netip.ParseAddr(addr); err == nil {
				keys[vsKey(string(port.Protocol), a.Unmap(), uint16(port.Port))] = true
			}
		}
		if port.NodePort != 0 {
			keys[portKey(string(port.Protocol), port.NodePort)] = true
		}
	}
	return isImmediateVS(keys, vs)
}

func (c *cluster) hasLiveEndpoint(service string, to netip.AddrPort) bool {
	for _, s := range c.slices {
		if s.Labels[discovery.LabelServiceName] != service || !slices.ContainsFunc(s.Ports, func(p discovery.EndpointPort) bool {
			return p.Port != nil && uint16(*p.Port) == to.Port()
		}) {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			if a, err := netip.ParseAddr(e.Addresses[0]); err != nil || a.Unmap() != to.Addr() {
				continue
			}
			serving := e.Conditions.Serving == nil || *e.Conditions.Serving // as upstream's cache reads it
			if e.Conditions.Terminating == nil || !*e.Conditions.Terminating || serving {
				return true
			}
		}
	}
	return false
}

func immediatePolicy(svc *v1.Service, gate bool) bool {
	switch svc.Annotations[ourproxier.TerminationPolicyAnnotation] {
	case ourproxier.PolicyImmediate:
		return true
	case ourproxier.PolicyGraceful:
		return false
	}
	return gate
}

// serviceAddresses are the addresses a Service's ports are served on,
// besides node ports.
func serviceAddresses(svc *v1.Service) []string {
	addrs := slices.Clone(svc.Spec.ClusterIPs)
	addrs = append(addrs, svc.Spec.ExternalIPs...)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		addrs = append(addrs, ing.IP)
	}
	return addrs
}

// describe lists the state's objects one a line, for failure reports.
func (c *cluster) describe() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c.services)) {
		b.WriteString("    " + describeService(c.services[name]) + "\n")
	}
	for _, name := range slices.Sorted(maps.Keys(c.slices)) {
		b.WriteString("    " + describeSlice(c.slices[name]) + "\n")
	}
	fmt.Fprintf(&b, "    node labels %v\n", c.labels)
	return b.String()
}

func describeService(s *v1.Service) string {
	var ports []string
	for _, p := range s.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s/%s:%d->%s np=%d", p.Name, p.Protocol, p.Port, p.TargetPort.String(), p.NodePort))
	}
	var lbs []string
	for _, ing := range s.Status.LoadBalancer.Ingress {
		mode := ""
		if ing.IPMode != nil {
			mode = "(" + string(*ing.IPMode) + ")"
		}
		lbs = append(lbs, ing.IP+mode)
	}
	out := fmt.Sprintf("service %s %s ips=%v ports=%v", s.Name, s.Spec.Type, s.Spec.ClusterIPs, ports)
	out += fmt.Sprintf(" etp=%s itp=%s affinity=%s", s.Spec.ExternalTrafficPolicy, ptrString(s.Spec.InternalTrafficPolicy), s.Spec.SessionAffinity)
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		out += fmt.Sprintf("/%ds", *c.ClientIP.TimeoutSeconds)
	}
	if len(s.Spec.ExternalIPs) > 0 {
		out += fmt.Sprintf(" externalIPs=%v", s.Spec.ExternalIPs)
	}
	if len(lbs) > 0 || len(s.Spec.LoadBalancerSourceRanges) > 0 {
		out += fmt.Sprintf(" lb=%v ranges=%v", lbs, s.Spec.LoadBalancerSourceRanges)
	}
	if s.Spec.HealthCheckNodePort != 0 {
		out += fmt.Sprintf(" hc=%d", s.Spec.HealthCheckNodePort)
	}
	if p := s.Annotations[ourproxier.TerminationPolicyAnnotation]; p != "" {
		out += " policy=" + p
	}
	return out
}

func describeSlice(s *discovery.EndpointSlice) string {
	var ports, eps []string
	for _, p := range s.Ports {
		ports = append(ports, fmt.Sprintf("%s/%s:%s", ptrString(p.Name), ptrString(p.Protocol), ptrString(p.Port)))
	}
	for _, e := range s.Endpoints {
		eps = append(eps, describeEndpoint(e))
	}
	return fmt.Sprintf("slice %s of %s %s ports=%v endpoints=[%s]", s.Name, s.Labels[discovery.LabelServiceName],
		s.AddressType, ports, strings.Join(eps, "; "))
}

// describeEndpoint shows addresses, ready/serving/terminating, node, zone, hints.
func describeEndpoint(e discovery.Endpoint) string {
	c := e.Conditions
	out := fmt.Sprintf("%v r=%s s=%s t=%s node=%s zone=%s", e.Addresses, ptrString(c.Ready), ptrString(c.Serving),
		ptrString(c.Terminating), ptrString(e.NodeName), ptrString(e.Zone))
	if e.Hints != nil {
		out += fmt.Sprintf(" hints=%v/%v", e.Hints.ForZones, e.Hints.ForNodes)
	}
	return out
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
