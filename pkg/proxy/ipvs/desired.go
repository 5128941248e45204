package ipvs

import (
	"net"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// wantedService is one IPVS virtual server the proxier wants, with the real
// servers it wants behind it (all at weight 1).
type wantedService struct {
	service ipvs.Service
	dests   destKeys
	// graceful are the port's endpoints this virtual server does not use
	// whose pods are not going away (a readiness flap, terminating but
	// still serving, excluded by topology or a traffic policy): their real
	// servers drain at weight 0 under either policy, exactly as upstream,
	// because their connections are healthy. Shared by the port's virtual
	// servers that use the same endpoints; nil in the usual case (a
	// pointer: a slice would take 16 bytes more in every virtual server,
	// 144 instead of 128).
	graceful *destKeys
	// port is the contribution that wants it (its service port's name).
	port *contribution
	// next is the following virtual server of its chain in the index
	// (see wantedIndex).
	next *wantedService
}

// immediate: a real server whose endpoint is going away (see goingAway)
// is deleted at once (and its conntrack entries flushed) instead of
// drained at weight 0. The port's policy: the same for all its virtual
// servers.
func (ws *wantedService) immediate() bool { return ws.port.immediate }

// contribution is what one service port adds to the desired state. The
// desired state is the union of all contributions, so a sync after a
// change rebuilds only the changed ports' contributions.
type contribution struct {
	name proxy.ServicePortName
	// first is the port's first virtual server, more.services the others:
	// most ports have one, and a list would take 24 bytes more each (its
	// header 16 more than a pointer, 112 bytes instead of 96, and its
	// array of one; see eachService).
	first *wantedService
	// clusterIP: first is the port's cluster IP, which is bound and a
	// member of KUBE-CLUSTER-IP without being listed in more (one address
	// and member fewer to keep per port; see eachBound, eachEntry).
	clusterIP bool
	// noLocalInternal and noLocalExternal: a virtual server of this port
	// wants node-local endpoints, the node has none and the cluster has
	// some (upstream's kubeproxy_sync_proxy_rules_no_local_endpoints_total).
	noLocalInternal, noLocalExternal bool
	// immediate is the port's termination policy (see wantedService.immediate).
	immediate bool
	// more is nil for a port with nothing besides its cluster IP to bind,
	// add to sets or serve (most ports: four slice headers fewer to keep).
	more *contributionMore
	// next is the following contribution of its chain in the index (see
	// portIndex).
	next *contribution
}

// contributionMore is what a port binds and adds to sets besides its
// cluster IP.
type contributionMore struct {
	// services are the port's virtual servers after first.
	services []*wantedService
	bound    []netip.Addr
	// entries name their set by its IPv4 name.
	entries        []setEntry
	lbNoNodeAccess []ipset.Entry
}

// extra is c.more, made on first use.
func (c *contribution) extra() *contributionMore {
	if c.more == nil {
		c.more = &contributionMore{}
	}
	return c.more
}

// eachService calls f with each virtual server of the contribution, first
// to last.
func (c *contribution) eachService(f func(*wantedService)) {
	if c.first == nil {
		return
	}
	f(c.first)
	if c.more != nil {
		for _, ws := range c.more.services {
			f(ws)
		}
	}
}

// entries are the set members the contribution adds besides its cluster
// IP's.
func (c *contribution) entries() []setEntry {
	if c.more == nil {
		return nil
	}
	return c.more.entries
}

// lbNoNodeAccess are the load-balancer members the node may not reach.
func (c *contribution) lbNoNodeAccess() []ipset.Entry {
	if c.more == nil {
		return nil
	}
	return c.more.lbNoNodeAccess
}

// buildInput is everything a contribution is a function of.
type buildInput struct {
	nodeName       string
	nodeIP         netip.Addr
	topologyLabels map[string]string
	// otherAddrs are the node's addresses outside kube-ipvs0: an external
	// IP that is one of them is not bound on kube-ipvs0.
	otherAddrs map[netip.Addr]struct{}
	// nodePortAddrs are the addresses NodePort virtual servers listen on.
	nodePortAddrs []netip.Addr
	// notReadyNodes are the nodes the API server reports as not Ready;
	// endpointNodes the node of each not-ready endpoint, by Service (a
	// snapshot: informers update the live index during a sync).
	notReadyNodes sets.Set[string]
	endpointNodes map[types.NamespacedName]map[netip.Addr]string
	cfg           *Config
}

// onLostNode says whether a not-ready endpoint of a Service sits on a node
// the API server reports as not Ready.
func (in *buildInput) onLostNode(svc types.NamespacedName, addr netip.Addr) bool {
	if in.notReadyNodes.Len() == 0 {
		return false
	}
	node, ok := in.endpointNodes[svc][addr]
	return ok && in.notReadyNodes.Has(node)
}

// buildContribution computes one service port's share of the desired
// state; it reads nothing but its arguments. Invalid ports contribute nothing.
func buildContribution(in *buildInput, name proxy.ServicePortName, port proxy.ServicePort, eps []proxy.Endpoint) *contribution {
	policy, invalid, ok := portSettings(port)
	if !ok || invalid != "" {
		return &contribution{name: name} // reported when the Service changed
	}
	b := portBuilder{in: in, c: &contribution{name: name}, name: name, sp: port, policy: policy, proto: protocolName(ipvs.Protocol(port.Protocol()))}
	b.c.immediate = b.immediate()
	b.build(eps)
	return b.c
}

// portBuilder adds one service port's virtual servers and set members.
type portBuilder struct {
	in   *buildInput
	c    *contribution
	name proxy.ServicePortName
	sp   proxy.ServicePort
	// policy is the port's termination policy override ("": the gate's).
	policy string
	proto  string
	// cluster and local are the endpoints upstream's CategorizeEndpoints
	// picks; usable are all the port's valid endpoints.
	cluster, local, usable []proxy.Endpoint
	// graceful caches wantedService.graceful for the cluster [0] and the
	// local [1] choice of endpoints, once gracefulDone says so.
	graceful     [2]*destKeys
	gracefulDone [2]bool
	// hasAny: some endpoint in the cluster is usable (CategorizeEndpoints).
	hasAny bool
}

func (b *portBuilder) build(all []proxy.Endpoint) {
	eps := usableEndpoints(all)
	b.usable = eps
	b.cluster, b.local, _, b.hasAny = proxy.CategorizeEndpoints(eps, b.sp, b.in.nodeName, b.in.topologyLabels)
	b.addLoopBack(eps)
	b.addClusterIP()
	b.addExternalIPs()
	b.addLoadBalancers()
	b.addNodePorts()
	if hc := b.sp.HealthCheckNodePort(); hc > 0 && hc <= 65535 {
		b.add(setHealthCheckPort, ipset.Entry{Port: uint16(hc)})
	}
}

func (b *portBuilder) add(set string, e ipset.Entry) {
	m := b.c.extra()
	m.entries = append(m.entries, setEntry{set: set, entry: e})
}

// usableEndpoints drops endpoints that cannot be programmed (reported when
// their EndpointSlice changed); eps itself when all can (no copy).
func usableEndpoints(eps []proxy.Endpoint) []proxy.Endpoint {
	if !slices.ContainsFunc(eps, func(e proxy.Endpoint) bool { return endpointProblem(e) != "" }) {
		return eps
	}
	return slices.DeleteFunc(slices.Clone(eps), func(e proxy.Endpoint) bool { return endpointProblem(e) != "" })
}

// addLoopBack lets a local endpoint reach itself through the service (hairpin).
func (b *portBuilder) addLoopBack(eps []proxy.Endpoint) {
	for _, e := range eps {
		if e.IsLocal() {
			addr := endpointAddr(e)
			b.add(setLoopBack, ipset.Entry{IP: addr, Protocol: b.proto, Port: uint16(e.Port()), IP2: addr})
		}
	}
}

func (b *portBuilder) entry(addr netip.Addr, port int) ipset.Entry {
	return ipset.Entry{IP: addr, Protocol: b.proto, Port: uint16(port)}
}

func (b *portBuilder) addClusterIP() {
	addr, _ := addrFromIP(b.sp.ClusterIP())
	b.addVirtualServer(addr, b.sp.Port(), b.sp.InternalPolicyLocal(), false) // bound: see clusterIP
	b.c.clusterIP = true
}

// eachBound calls f with each address the contribution binds (a callback,
// not an iterator: a partial sync calls it for every changed port, and a
// returned iterator is an allocation each time).
func (c *contribution) eachBound(f func(netip.Addr)) {
	if c.clusterIP {
		f(c.first.service.Address)
	}
	if c.more != nil {
		for _, a := range c.more.bound {
			f(a)
		}
	}
}

// eachEntry calls f with each set member the contribution adds.
func (c *contribution) eachEntry(f func(setEntry)) {
	if c.clusterIP {
		f(clusterIPMember(c.first.service.ServiceKey))
	}
	for _, e := range c.entries() {
		f(e)
	}
}

// protocolOf is the protocol ipset names p ("" when none is).
func protocolOf(p string) ipvs.Protocol {
	switch p {
	case "tcp":
		return ipvs.TCP
	case "udp":
		return ipvs.UDP
	case "sctp":
		return ipvs.SCTP
	}
	return ""
}

// protocolName is a protocol as ipset names it.
func protocolName(p ipvs.Protocol) string {
	switch p {
	case ipvs.UDP:
		return "udp"
	case ipvs.SCTP:
		return "sctp"
	default:
		return "tcp"
	}
}

func (b *portBuilder) addExternalIPs() {
	for _, ip := range b.sp.ExternalIPs() {
		addr, ok := addrFromIP(ip)
		if !ok || !routableUnicast(addr) {
			continue
		}
		if b.sp.ExternalPolicyLocal() {
			b.add(setExternalIPLocal, b.entry(addr, b.sp.Port()))
		} else {
			b.add(setExternalIP, b.entry(addr, b.sp.Port()))
		}
		_, onNode := b.in.otherAddrs[addr]
		b.addVirtualServer(addr, b.sp.Port(), b.sp.ExternalPolicyLocal(), !onNode)
	}
}

func (b *portBuilder) addLoadBalancers() {
	for _, ip := range b.sp.LoadBalancerVIPs() {
		addr, ok := addrFromIP(ip)
		if !ok || !routableUnicast(addr) {
			continue
		}
		e := b.entry(addr, b.sp.Port())
		b.add(setLoadBalancer, e)
		if b.sp.ExternalPolicyLocal() {
			b.add(setLoadBalancerLoc, e)
		}
		if ranges := b.sp.LoadBalancerSourceRanges(); len(ranges) > 0 {
			b.addSourceRanges(e)
		}
		_, onNode := b.in.otherAddrs[addr]
		b.addVirtualServer(addr, b.sp.Port(), b.sp.ExternalPolicyLocal(), !onNode)
	}
}

// addSourceRanges admits only the listed sources to a load-balancer IP; the
// node itself is admitted only when a range contains its IP.
func (b *portBuilder) addSourceRanges(e ipset.Entry) {
	b.add(setLoadBalancerFW, e)
	allowNode := false
	for _, cidr := range b.sp.LoadBalancerSourceRanges() {
		prefix, ok := prefixFromIPNet(cidr)
		if !ok {
			continue
		}
		withNet := e
		withNet.Net = prefix
		b.add(setLBSourceCIDR, withNet)
		if b.in.nodeIP.IsValid() && prefix.Contains(b.in.nodeIP) {
			allowNode = true
		}
	}
	if allowNode {
		self := e
		self.IP2 = e.IP
		b.add(setLBSourceIP, self)
	} else {
		m := b.c.extra()
		m.lbNoNodeAccess = append(m.lbNoNodeAccess, e)
	}
}

func (b *portBuilder) addNodePorts() {
	np := b.sp.NodePort()
	if np == 0 || len(b.in.nodePortAddrs) == 0 {
		return
	}
	all, local := b.nodePortSets()
	for _, e := range b.nodePortEntries(np) {
		b.add(all, e)
		if b.sp.ExternalPolicyLocal() {
			b.add(local, e)
		}
	}
	for _, addr := range b.in.nodePortAddrs {
		b.addVirtualServer(addr, np, b.sp.ExternalPolicyLocal(), false)
	}
}

func (b *portBuilder) nodePortSets() (all, local string) {
	switch b.proto {
	case "udp":
		return setNodePortUDP, setNodePortLocalUDP
	case "sctp":
		return setNodePortSCTP, setNodePortLocSCTP
	default:
		return setNodePortTCP, setNodePortLocalTCP
	}
}

// nodePortEntries: TCP and UDP node ports are bitmap:port members; SCTP
// ones are ip,port members for each node address (upstream's layout).
func (b *portBuilder) nodePortEntries(np int) []ipset.Entry {
	if b.proto != "sctp" {
		return []ipset.Entry{{Port: uint16(np)}} // bitmap:port members carry no protocol
	}
	out := make([]ipset.Entry, 0, len(b.in.nodePortAddrs))
	for _, addr := range b.in.nodePortAddrs {
		out = append(out, b.entry(addr, np))
	}
	return out
}

// addVirtualServer adds one virtual server; onlyLocal picks node-local
// endpoints, falling back to the cluster-wide ones when there are none, as
// upstream's IPVS proxier does.
func (b *portBuilder) addVirtualServer(addr netip.Addr, port int, onlyLocal, bind bool) {
	svc := b.virtualService(addr, port)
	eps, choice := b.cluster, 0
	if onlyLocal && len(b.local) > 0 {
		eps, choice = b.local, 1
	} else if onlyLocal && b.hasAny {
		b.noLocalEndpoints()
	}
	var room [16]ipvs.DestinationKey // most ports have fewer endpoints: packed without a list on the heap
	keys := room[:0]
	for _, e := range eps {
		keys = append(keys, destKey(e))
	}
	ws := &wantedService{service: svc, dests: newDestKeys(keys), port: b.c}
	if !b.gracefulDone[choice] {
		b.graceful[choice], b.gracefulDone[choice] = b.gracefulBesides(ws.dests), true
	}
	ws.graceful = b.graceful[choice]
	if b.c.first == nil {
		b.c.first = ws
	} else {
		m := b.c.extra()
		m.services = append(m.services, ws)
	}
	if bind {
		m := b.c.extra()
		m.bound = append(m.bound, addr)
	}
}

// gracefulKeys are ws.graceful (nil: none).
func (ws *wantedService) gracefulKeys() destKeys {
	if ws.graceful == nil {
		return nil
	}
	return *ws.graceful
}

// podAlive says whether a pod IP is still an endpoint of the port that is
// not going away, on another port (the Service's target port changed): its
// old real server's connections are healthy, so it retires gracefully.
func (ws *wantedService) podAlive(a netip.Addr) bool {
	return ws.dests.hasAddress(a) || ws.gracefulKeys().hasAddress(a)
}

// gracefulBesides lists the usable endpoints outside dests that are not
// going away (nil: none).
func (b *portBuilder) gracefulBesides(dests destKeys) *destKeys {
	var out []ipvs.DestinationKey
	for _, e := range b.usable {
		if dk := destKey(e); !dests.has(dk) && !b.goingAway(e) {
			out = append(out, dk)
		}
	}
	if len(out) == 0 {
		return nil
	}
	keys := newDestKeys(out)
	return &keys
}

// goingAway says whether an endpoint's pod is going away, so that the
// immediate policy may delete its real server at once: it terminates and no
// longer serves, or it is not ready on a node the API server reports as not
// Ready (a lost node: the node-lifecycle controller marks its pods not
// ready, and terminates them only minutes later). An endpoint in no
// EndpointSlice at all is going away too; it is simply not listed. Every
// other endpoint's pod is alive (readiness flap, still serving while it
// terminates, left out by topology or a traffic policy).
func (b *portBuilder) goingAway(e proxy.Endpoint) bool {
	if e.IsTerminating() && !e.IsServing() {
		return true
	}
	// Serving wins over the node's condition: a pod the API still reports
	// serving (terminating or not) is alive as far as anyone knows; the
	// node-lifecycle controller marks a lost node's pods not serving.
	return !e.IsServing() && b.in.onLostNode(b.name.NamespacedName, endpointAddr(e))
}

// noLocalEndpoints marks the port as upstream's syncEndpoint does when a
// virtual server that wants node-local endpoints falls back to the
// cluster-wide ones: under each traffic policy of the Service that is
// Local, whichever virtual server it was.
func (b *portBuilder) noLocalEndpoints() {
	b.c.noLocalInternal = b.c.noLocalInternal || b.sp.InternalPolicyLocal()
	b.c.noLocalExternal = b.c.noLocalExternal || b.sp.ExternalPolicyLocal()
}

func destKey(e proxy.Endpoint) ipvs.DestinationKey {
	return ipvs.DestinationKey{Address: endpointAddr(e), Port: uint16(e.Port())}
}

func (b *portBuilder) virtualService(addr netip.Addr, port int) ipvs.Service {
	cfg := b.in.cfg
	svc := ipvs.Service{
		ServiceKey: ipvs.ServiceKey{Address: addr, Protocol: ipvs.Protocol(b.sp.Protocol()), Port: uint16(port)},
		Scheduler:  cfg.scheduler(),
		Flags:      cfg.SchedulerFlags,
		Netmask:    0xffffffff,
	}
	if addr.Is6() {
		svc.Netmask = 128
	}
	if b.sp.SessionAffinityType() == v1.ServiceAffinityClientIP {
		svc.Flags |= ipvs.FlagPersistent
		svc.Timeout = uint32(b.sp.StickyMaxAgeSeconds())
	}
	if svc.Scheduler == "mh" {
		svc.Flags |= ipvs.FlagSchedFlag2 // mh-port: hash the source port too, like upstream
	}
	return svc
}

func (b *portBuilder) immediate() bool {
	switch b.policy {
	case PolicyImmediate:
		return true
	case PolicyGraceful:
		return false
	}
	return b.in.cfg.ImmediateTermination
}

func (c *Config) scheduler() string {
	if c.Scheduler == "" {
		return "rr"
	}
	return c.Scheduler
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	addr, ok := addrFromIP(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	if addr.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(addr, ones).Masked(), true
}
