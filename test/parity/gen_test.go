package parity

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

// gen makes one random scenario from a seed. Addresses and ports come from
// counters, so that no two Service ports ever claim the same virtual
// server (upstream would then pick one by map order).
type gen struct {
	r   *rand.Rand
	env *environment
	// counters of what was handed out
	services, slices, clusterIPs, externalIPs, lbIPs, nodePorts, ports int
	// deleted are deleted Services with their slices, to create again.
	deleted []*cluster
}

// generate builds the scenario of a seed: a node, an initial cluster, 2 to
// 6 updates of one to three changes each, and the deletion of everything.
func generate(seed uint64) *scenario {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x1b5a7e))}
	g.env = g.environment()
	c := newCluster()
	c.labels = g.labels()
	n := 1 + g.r.IntN(6)
	for range n {
		g.addService(c)
	}
	sc := &scenario{name: fmt.Sprintf("seed-%d", seed), seed: seed, env: *g.env}
	sc.steps = append(sc.steps, step{what: fmt.Sprintf("create %d services", n), cluster: c})
	for range 2 + g.r.IntN(5) {
		c = c.clone()
		if g.chance(0.12) {
			sc.steps = append(sc.steps, g.restart(c))
			continue
		}
		var whats []string
		for range 1 + g.r.IntN(3) {
			whats = append(whats, g.mutate(c))
		}
		sc.steps = append(sc.steps, step{what: fmt.Sprint(whats), cluster: c})
	}
	end := newCluster()
	end.labels = c.labels
	sc.steps = append(sc.steps, step{what: "delete every service and slice", cluster: end})
	return sc
}

// restart restarts the proxiers, now and then with another scheduler.
func (g *gen) restart(c *cluster) step {
	r := &restart{}
	if g.chance(0.3) {
		r.scheduler = pick(g.r, "rr", "mh", "sh", "lc")
	}
	return step{what: fmt.Sprintf("restart the proxiers (scheduler %q)", r.scheduler), cluster: c, restart: r}
}

// pick returns one of the choices at random.
func pick[T any](r *rand.Rand, choices ...T) T { return choices[r.IntN(len(choices))] }

// chance is true with probability p.
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) environment() *environment {
	env := &environment{
		families: pick(g.r, []v1.IPFamily{v1.IPv4Protocol}, []v1.IPFamily{v1.IPv6Protocol},
			[]v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}, []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}),
		links: []link{{name: "eth0", addrs: []netip.Prefix{
			netip.MustParsePrefix("192.168.0.10/24"), netip.MustParsePrefix("fd00::10/64")}}},
		scheduler: pick(g.r, "", "rr", "rr", "mh", "sh", "wlc"),
	}
	eth1 := link{name: "eth1"} // a link without addresses when the node has one network
	if g.chance(0.5) {
		eth1.addrs = []netip.Prefix{netip.MustParsePrefix("192.168.1.10/24"), netip.MustParsePrefix("fd00:1::10/64")}
	}
	env.links = append(env.links, eth1)
	env.nodePortAddresses = pick(g.r, nil, nil, []string{"192.168.1.0/24"}, []string{"192.168.0.10/32", "fd00:1::/64"},
		[]string{"0.0.0.0/0", "::/0"}, []string{"127.0.0.0/8", "192.168.0.0/16", "::1/128"}, []string{"fd00::/64"})
	env.excludeCIDRs = pick(g.r, nil, nil, []string{"172.16.0.0/16"}, []string{"10.96.0.4/30", "fd00:96::4/126"},
		[]string{"172.16.0.0/16", "fd00:172::/64"}, []string{"10.244.0.0/29", "fd00:244::/125"})
	if g.chance(0.3) {
		g.foreign(env)
	}
	return env
}

// foreign adds state no proxier made: virtual servers in and out of the
// excluded CIDRs, and an address on kube-ipvs0.
func (g *gen) foreign(env *environment) {
	for _, s := range []string{"172.16.0.5", "172.17.0.5", "fd00:172::5", "fd00:173::5"} {
		addr := netip.MustParseAddr(s)
		f := foreignService{proto: pick(g.r, v1.ProtocolTCP, v1.ProtocolUDP), addr: addr, port: 80}
		dest := netip.MustParseAddr("10.250.0.1")
		if addr.Is6() {
			dest = netip.MustParseAddr("fd00:250::1")
		}
		f.dests = []foreignDest{{netip.AddrPortFrom(dest, 8080), 1}}
		env.foreignServices = append(env.foreignServices, f)
	}
	env.foreignBound = []netip.Addr{netip.MustParseAddr("172.17.0.5"), netip.MustParseAddr("fd00:173::5")}
	if g.chance(0.5) {
		g.leftovers(env)
	}
}

// leftovers are what an earlier kube-proxy left for the first Service's
// port (its addresses and port are the first ones handed out): a virtual
// server with another scheduler, a real server at weight 0, another one
// no endpoint backs.
func (g *gen) leftovers(env *environment) {
	for _, f := range env.families {
		vip := netip.MustParseAddr(familyAddr(f, "10.96.0.0", "fd00:96::", 1))
		pod := netip.MustParseAddr(familyAddr(f, "10.244.0.0", "fd00:244::", 1+g.r.IntN(12)))
		stray := netip.MustParseAddr(familyAddr(f, "10.250.0.0", "fd00:250::", 2))
		env.foreignServices = append(env.foreignServices, foreignService{
			proto: v1.ProtocolTCP, addr: vip, port: 80, scheduler: pick(g.r, "rr", "sh", "wlc"),
			dests: []foreignDest{{netip.AddrPortFrom(pod, 8000), pick(g.r, 0, 1)}, {netip.AddrPortFrom(stray, 8000), pick(g.r, 0, 1)}},
		})
		env.foreignBound = append(env.foreignBound, vip)
	}
}

func (g *gen) labels() map[string]string {
	return pick(g.r, nil, map[string]string{zoneLabel: "zone-a"}, map[string]string{zoneLabel: "zone-a"},
		map[string]string{zoneLabel: "zone-b"})
}

// addService adds a Service of a random type, with its EndpointSlices.
func (g *gen) addService(c *cluster) string {
	name := fmt.Sprintf("s%d", g.services)
	g.services++
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	svc.Spec.IPFamilies = g.serviceFamilies()
	for _, f := range svc.Spec.IPFamilies {
		svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, g.clusterIP(f))
	}
	for i := range 1 + g.r.IntN(3) {
		svc.Spec.Ports = append(svc.Spec.Ports, g.servicePort(i))
	}
	if len(svc.Spec.Ports) == 1 && g.chance(0.3) {
		svc.Spec.Ports[0].Name = "" // the usual single unnamed port
	}
	switch k := g.r.IntN(20); {
	case k == 0:
		svc.Spec.Type, svc.Spec.ExternalName = v1.ServiceTypeExternalName, "example.com"
		svc.Spec.ClusterIPs, svc.Spec.IPFamilies = nil, nil
	case k == 1:
		svc.Spec.Type, svc.Spec.ClusterIPs = v1.ServiceTypeClusterIP, []string{v1.ClusterIPNone}
	case k < 9:
		g.setType(svc, v1.ServiceTypeClusterIP)
	case k < 14:
		g.setType(svc, v1.ServiceTypeNodePort)
	default:
		g.setType(svc, v1.ServiceTypeLoadBalancer)
	}
	g.setClusterIP(svc)
	g.setAffinity(svc)
	svc.Spec.InternalTrafficPolicy = pick(g.r, nil, ptr.To(v1.ServiceInternalTrafficPolicyCluster), ptr.To(v1.ServiceInternalTrafficPolicyLocal))
	if g.chance(0.25) {
		g.setExternalIPs(svc)
	}
	g.setExternalPolicy(svc, pick(g.r, v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal))
	if g.chance(0.25) {
		svc.Annotations = map[string]string{ourproxier.TerminationPolicyAnnotation: pick(g.r,
			ourproxier.PolicyImmediate, ourproxier.PolicyGraceful, "bogus")}
	}
	c.services[name] = svc
	for _, f := range g.sliceFamilies(svc) {
		for range g.r.IntN(3) {
			g.addSlice(c, svc, f)
		}
	}
	return name
}

func (g *gen) setClusterIP(svc *v1.Service) {
	if len(svc.Spec.ClusterIPs) > 0 {
		svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
	}
}

func (g *gen) serviceFamilies() []v1.IPFamily {
	fams := slices.Clone(g.env.families)
	if len(fams) == 2 && g.chance(0.5) {
		return []v1.IPFamily{pick(g.r, fams...)}
	}
	if len(fams) == 2 && g.chance(0.5) {
		fams[0], fams[1] = fams[1], fams[0]
	}
	return fams
}

// sliceFamilies are the address types of a Service's slices: its own
// families, and now and then the other one (a slice no proxier uses).
func (g *gen) sliceFamilies(svc *v1.Service) []v1.IPFamily {
	fams := slices.Clone(svc.Spec.IPFamilies)
	if len(fams) == 0 {
		fams = []v1.IPFamily{v1.IPv4Protocol}
	}
	if len(fams) == 1 && g.chance(0.1) {
		fams = append(fams, otherFamily(fams[0]))
	}
	return fams
}

func otherFamily(f v1.IPFamily) v1.IPFamily {
	if f == v1.IPv4Protocol {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func (g *gen) servicePort(i int) v1.ServicePort {
	g.ports++
	// UDP costs upstream a conntrack table dump per sync that changes its
	// endpoints (15 ms on a big table): fewer UDP ports keep the test fast.
	proto := pick(g.r, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP)
	return v1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: proto, Port: int32(79 + g.ports),
		TargetPort: intstr.FromInt32(int32(8000 + i))}
}

// setType changes a Service's type, with the node ports, health check
// port and load-balancer status that type has.
func (g *gen) setType(svc *v1.Service, typ v1.ServiceType) {
	svc.Spec.Type = typ
	svc.Spec.AllocateLoadBalancerNodePorts = nil
	withNodePorts := typ == v1.ServiceTypeNodePort || typ == v1.ServiceTypeLoadBalancer
	if typ == v1.ServiceTypeLoadBalancer && g.chance(0.15) {
		svc.Spec.AllocateLoadBalancerNodePorts, withNodePorts = ptr.To(false), false
	}
	for i := range svc.Spec.Ports {
		switch {
		case !withNodePorts:
			svc.Spec.Ports[i].NodePort = 0
		case svc.Spec.Ports[i].NodePort == 0:
			svc.Spec.Ports[i].NodePort = g.nodePort()
		}
	}
	svc.Status = v1.ServiceStatus{}
	svc.Spec.LoadBalancerSourceRanges = nil
	if typ == v1.ServiceTypeLoadBalancer {
		g.setLoadBalancer(svc)
	}
	g.setExternalPolicy(svc, svc.Spec.ExternalTrafficPolicy)
}

func (g *gen) nodePort() int32 {
	g.nodePorts++
	return int32(30000 + g.nodePorts)
}

// setExternalPolicy sets the policy where the API allows one, and the
// health check node port of a Local load balancer.
func (g *gen) setExternalPolicy(svc *v1.Service, p v1.ServiceExternalTrafficPolicy) {
	external := svc.Spec.Type == v1.ServiceTypeNodePort || svc.Spec.Type == v1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0
	if !external {
		svc.Spec.ExternalTrafficPolicy, svc.Spec.HealthCheckNodePort = "", 0
		return
	}
	if p == "" {
		p = v1.ServiceExternalTrafficPolicyCluster
	}
	svc.Spec.ExternalTrafficPolicy = p
	wantHC := svc.Spec.Type == v1.ServiceTypeLoadBalancer && p == v1.ServiceExternalTrafficPolicyLocal
	switch {
	case !wantHC:
		svc.Spec.HealthCheckNodePort = 0
	case svc.Spec.HealthCheckNodePort == 0:
		svc.Spec.HealthCheckNodePort = g.nodePort()
	}
}

func (g *gen) setAffinity(svc *v1.Service) {
	if g.chance(0.7) {
		svc.Spec.SessionAffinity, svc.Spec.SessionAffinityConfig = v1.ServiceAffinityNone, nil
		return
	}
	timeout := pick(g.r, int32(1), int32(10), int32(10800), int32(86400))
	svc.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}}
}

// setExternalIPs gives one or two external IPs, now and then one of the
// node's own addresses (not bound on kube-ipvs0 then).
func (g *gen) setExternalIPs(svc *v1.Service) {
	svc.Spec.ExternalIPs = nil
	for range 1 + g.r.IntN(2) {
		f := pick(g.r, g.env.families...)
		if g.chance(0.2) {
			svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, nodeIPOf(f).String())
			continue
		}
		g.externalIPs++
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, familyAddr(f, "203.0.113.0", "2001:db8:e::", g.externalIPs))
	}
	svc.Spec.ExternalIPs = slices.Compact(svc.Spec.ExternalIPs)
}

// setLoadBalancer gives ingress IPs (some in Proxy mode, which kube-proxy
// does not program) and maybe source ranges, with or without the node.
func (g *gen) setLoadBalancer(svc *v1.Service) {
	svc.Status = v1.ServiceStatus{}
	for range g.r.IntN(3) {
		g.lbIPs++
		ing := v1.LoadBalancerIngress{IP: familyAddr(pick(g.r, svc.Spec.IPFamilies...), "198.51.100.0", "2001:db8:b::", g.lbIPs)}
		if g.chance(0.15) {
			ing.IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
		} else if g.chance(0.5) {
			ing.IPMode = ptr.To(v1.LoadBalancerIPModeVIP)
		}
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, ing)
	}
	svc.Spec.LoadBalancerSourceRanges = nil
	if g.chance(0.35) {
		ranges := []string{"192.168.0.0/24", "203.0.113.0/24", "10.0.0.0/8", "fd00::/64", "2001:db8::/32"}
		for range 1 + g.r.IntN(2) {
			svc.Spec.LoadBalancerSourceRanges = append(svc.Spec.LoadBalancerSourceRanges, pick(g.r, ranges...))
		}
		slices.Sort(svc.Spec.LoadBalancerSourceRanges)
		svc.Spec.LoadBalancerSourceRanges = slices.Compact(svc.Spec.LoadBalancerSourceRanges)
	}
}

func (g *gen) clusterIP(f v1.IPFamily) string {
	g.clusterIPs++
	return familyAddr(f, "10.96.0.0", "fd00:96::", g.clusterIPs)
}

// familyAddr is the n-th address after a family's base address.
func familyAddr(f v1.IPFamily, base4, base6 string, n int) string {
	a := netip.MustParseAddr(base4)
	if f == v1.IPv6Protocol {
		a = netip.MustParseAddr(base6)
	}
	for range n {
		a = a.Next()
	}
	return a.String()
}

// podIP draws from a small pool, so that pods back several Services.
func (g *gen) podIP(f v1.IPFamily) string {
	return familyAddr(f, "10.244.0.0", "fd00:244::", 1+g.r.IntN(12))
}

// addSlice adds an EndpointSlice of a family for a Service.
func (g *gen) addSlice(c *cluster, svc *v1.Service, f v1.IPFamily) {
	g.slices++
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("%s-%d", svc.Name, g.slices),
			Labels: map[string]string{discovery.LabelServiceName: svc.Name}},
		AddressType: discovery.AddressType(f),
	}
	for i, p := range svc.Spec.Ports {
		if g.chance(0.08) {
			continue // a port the slice does not list
		}
		s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol),
			Port: ptr.To(int32(8000 + i))})
	}
	c.slices[s.Name] = s
	for range g.r.IntN(6) {
		g.addEndpoint(c, s)
	}
}

// addEndpoint adds a pod to a slice, unless the pod is already in a slice
// of the same Service: upstream's slice cache would then pick one of the
// two by map order, on both sides independently.
func (g *gen) addEndpoint(c *cluster, s *discovery.EndpointSlice) {
	ip := g.podIP(v1.IPFamily(s.AddressType))
	svcName := s.Labels[discovery.LabelServiceName]
	for _, other := range c.slices {
		if other.Labels[discovery.LabelServiceName] != svcName {
			continue
		}
		for _, e := range other.Endpoints {
			if e.Addresses[0] == ip {
				return
			}
		}
	}
	e := discovery.Endpoint{Addresses: []string{ip}, Conditions: g.conditions()}
	e.NodeName = pick(g.r, ptr.To(nodeName), ptr.To(nodeName), ptr.To(otherNode), ptr.To(otherNode), nil)
	g.setZone(&e)
	s.Endpoints = append(s.Endpoints, e)
}

// conditions: mostly ready, else terminating (serving or not), not ready,
// or unset (which means ready).
func (g *gen) conditions() discovery.EndpointConditions {
	switch k := g.r.IntN(20); {
	case k < 11:
		return discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}
	case k < 14:
		return discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	case k < 16:
		return discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(true)}
	case k < 18:
		return discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(false)}
	default:
		return discovery.EndpointConditions{}
	}
}

// setZone sets a zone and maybe topology hints (for zones, for nodes).
func (g *gen) setZone(e *discovery.Endpoint) {
	e.Zone = pick(g.r, ptr.To("zone-a"), ptr.To("zone-b"), nil)
	e.Hints = nil
	if g.chance(0.4) {
		e.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: pick(g.r, "zone-a", "zone-b")}}}
		if g.chance(0.3) {
			e.Hints.ForNodes = []discovery.ForNode{{Name: pick(g.r, nodeName, otherNode)}}
		}
	}
}

// mutate applies one random change and says what it was.
func (g *gen) mutate(c *cluster) string {
	names := slices.Sorted(maps.Keys(c.services))
	switch k := g.r.IntN(20); {
	case k < 2 || len(names) == 0:
		if len(g.deleted) > 0 && g.chance(0.5) {
			return g.recreateService(c)
		}
		return "add service " + g.addService(c)
	case k < 4:
		return g.deleteService(c, pick(g.r, names...))
	case k < 10:
		return g.changeService(c, c.services[pick(g.r, names...)])
	case k < 19:
		return g.changeEndpoints(c)
	default:
		old := c.labels
		c.labels = g.labels()
		return fmt.Sprintf("node labels %v -> %v", old, c.labels)
	}
}

// deleteService deletes a Service, mostly with its slices, and keeps it
// to be created again later (same addresses and ports).
func (g *gen) deleteService(c *cluster, name string) string {
	gone := newCluster()
	gone.services[name] = c.services[name]
	delete(c.services, name)
	if g.chance(0.3) {
		g.deleted = append(g.deleted, gone)
		return "delete service " + name + " (its slices stay)"
	}
	for sname, s := range c.slices {
		if s.Labels[discovery.LabelServiceName] == name {
			gone.slices[sname] = s
			delete(c.slices, sname)
		}
	}
	g.deleted = append(g.deleted, gone)
	return "delete service " + name + " and its slices"
}

// recreateService creates a deleted Service again, as it was.
func (g *gen) recreateService(c *cluster) string {
	i := g.r.IntN(len(g.deleted))
	gone := g.deleted[i]
	g.deleted = slices.Delete(g.deleted, i, i+1)
	var name string
	for n, svc := range gone.services {
		name = n
		c.services[n] = svc.DeepCopy()
	}
	for n, s := range gone.slices {
		c.slices[n] = s.DeepCopy()
	}
	return "create deleted service " + name + " again"
}

// changeService changes one thing of a Service.
func (g *gen) changeService(c *cluster, svc *v1.Service) string {
	if svc.Spec.Type == v1.ServiceTypeExternalName || svc.Spec.ClusterIP == v1.ClusterIPNone {
		return "add service " + g.addService(c)
	}
	name := svc.Name
	switch g.r.IntN(9) {
	case 8:
		if len(svc.Spec.IPFamilies) == 1 && len(g.env.families) == 2 {
			f := otherFamily(svc.Spec.IPFamilies[0])
			svc.Spec.IPFamilies = append(svc.Spec.IPFamilies, f)
			svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, g.clusterIP(f))
			return fmt.Sprintf("service %s: dual-stack %v", name, svc.Spec.ClusterIPs)
		}
		g.setAffinity(svc)
		return fmt.Sprintf("service %s: affinity %s", name, svc.Spec.SessionAffinity)
	case 0:
		typ := pick(g.r, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer)
		g.setType(svc, typ)
		return fmt.Sprintf("service %s: type %s", name, typ)
	case 1:
		p := pick(g.r, v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal)
		g.setExternalPolicy(svc, p)
		return fmt.Sprintf("service %s: externalTrafficPolicy %s", name, svc.Spec.ExternalTrafficPolicy)
	case 2:
		svc.Spec.InternalTrafficPolicy = pick(g.r, ptr.To(v1.ServiceInternalTrafficPolicyCluster), ptr.To(v1.ServiceInternalTrafficPolicyLocal))
		return fmt.Sprintf("service %s: internalTrafficPolicy %s", name, *svc.Spec.InternalTrafficPolicy)
	case 3:
		g.setAffinity(svc)
		return fmt.Sprintf("service %s: affinity %s", name, svc.Spec.SessionAffinity)
	case 4:
		if len(svc.Spec.ExternalIPs) > 0 && g.chance(0.4) {
			svc.Spec.ExternalIPs = nil
		} else {
			g.setExternalIPs(svc)
		}
		g.setExternalPolicy(svc, svc.Spec.ExternalTrafficPolicy)
		return fmt.Sprintf("service %s: externalIPs %v", name, svc.Spec.ExternalIPs)
	case 5:
		if svc.Spec.Type != v1.ServiceTypeLoadBalancer {
			g.setType(svc, v1.ServiceTypeLoadBalancer)
		} else {
			g.setLoadBalancer(svc)
		}
		return fmt.Sprintf("service %s: load balancer %v ranges %v", name, svc.Status.LoadBalancer.Ingress, svc.Spec.LoadBalancerSourceRanges)
	default:
		return g.changePorts(c, svc)
	}
}

// changePorts renumbers, re-protocols, adds or removes a port.
func (g *gen) changePorts(c *cluster, svc *v1.Service) string {
	i := g.r.IntN(len(svc.Spec.Ports))
	switch g.r.IntN(4) {
	case 0:
		g.ports++
		svc.Spec.Ports[i].Port = int32(79 + g.ports)
		return fmt.Sprintf("service %s: port %s number %d", svc.Name, svc.Spec.Ports[i].Name, svc.Spec.Ports[i].Port)
	case 1:
		if svc.Spec.Ports[0].Name == "" {
			renamePort(c, svc, "", "p0") // only a single port may be unnamed
		}
		p := svc.Spec.Ports[i]
		np := g.servicePort(len(svc.Spec.Ports))
		np.Name = fmt.Sprintf("p%d", g.ports)
		if p.NodePort != 0 {
			np.NodePort = g.nodePort()
		}
		svc.Spec.Ports = append(svc.Spec.Ports, np)
		return fmt.Sprintf("service %s: add port %s", svc.Name, np.Name)
	case 2:
		if len(svc.Spec.Ports) > 1 {
			name := svc.Spec.Ports[i].Name
			svc.Spec.Ports = slices.Delete(svc.Spec.Ports, i, i+1)
			return fmt.Sprintf("service %s: remove port %s", svc.Name, name)
		}
		fallthrough
	default:
		p := &svc.Spec.Ports[i]
		p.Protocol = pick(g.r, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP)
		for _, s := range c.slices {
			for j := range s.Ports {
				if s.Labels[discovery.LabelServiceName] == svc.Name && ptr.Deref(s.Ports[j].Name, "") == p.Name {
					s.Ports[j].Protocol = ptr.To(p.Protocol)
				}
			}
		}
		return fmt.Sprintf("service %s: port %s protocol %s", svc.Name, p.Name, p.Protocol)
	}
}

// renamePort renames a Service's port, in its slices too.
func renamePort(c *cluster, svc *v1.Service, from, to string) {
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == from {
			svc.Spec.Ports[i].Name = to
		}
	}
	for _, s := range c.slices {
		if s.Labels[discovery.LabelServiceName] != svc.Name {
			continue
		}
		for j := range s.Ports {
			if ptr.Deref(s.Ports[j].Name, "") == from {
				s.Ports[j].Name = ptr.To(to)
			}
		}
	}
}

// changeEndpoints changes one slice: an endpoint's lifecycle, node or
// hints, an endpoint added or removed, a slice added or deleted.
func (g *gen) changeEndpoints(c *cluster) string {
	sliceNames := slices.Sorted(maps.Keys(c.slices))
	if len(sliceNames) == 0 || g.chance(0.1) {
		return g.addSliceToSome(c)
	}
	s := c.slices[pick(g.r, sliceNames...)]
	if len(s.Endpoints) == 0 {
		g.addEndpoint(c, s)
		return "slice " + s.Name + ": add endpoint"
	}
	i := g.r.IntN(len(s.Endpoints))
	e := &s.Endpoints[i]
	what := fmt.Sprintf("slice %s: endpoint %s ", s.Name, e.Addresses[0])
	switch g.r.IntN(9) {
	case 0, 1, 2:
		return what + g.advance(s, i)
	case 3:
		e.Conditions = g.conditions()
		return what + "conditions: " + describeEndpoint(*e)
	case 4:
		e.NodeName = pick(g.r, ptr.To(nodeName), ptr.To(otherNode), nil)
		return what + "node " + ptrString(e.NodeName)
	case 5:
		g.setZone(e)
		return what + "zone/hints"
	case 6:
		g.addEndpoint(c, s)
		return "slice " + s.Name + ": add endpoint"
	case 7:
		delete(c.slices, s.Name)
		return "delete slice " + s.Name
	default:
		s.Endpoints = slices.Delete(s.Endpoints, i, i+1)
		return what + "removed"
	}
}

// advance moves an endpoint one step along a rolling update: ready ->
// terminating and serving -> terminating, not serving -> gone.
func (g *gen) advance(s *discovery.EndpointSlice, i int) string {
	c := &s.Endpoints[i].Conditions
	switch {
	case ptr.Deref(c.Terminating, false) && !ptr.Deref(c.Serving, true):
		s.Endpoints = slices.Delete(s.Endpoints, i, i+1)
		return "gone"
	case ptr.Deref(c.Terminating, false):
		c.Serving = ptr.To(false)
		return "terminating, not serving"
	default:
		c.Ready, c.Serving, c.Terminating = ptr.To(false), ptr.To(true), ptr.To(true)
		return "terminating, serving"
	}
}

func (g *gen) addSliceToSome(c *cluster) string {
	names := slices.Sorted(maps.Keys(c.services))
	if len(names) == 0 {
		return "add service " + g.addService(c)
	}
	svc := c.services[pick(g.r, names...)]
	f := pick(g.r, g.sliceFamilies(svc)...)
	g.addSlice(c, svc, f)
	return fmt.Sprintf("service %s: add a %s slice", svc.Name, f)
}
