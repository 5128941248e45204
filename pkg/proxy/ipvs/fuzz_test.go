package ipvs

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	netutils "k8s.io/utils/net"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// fuzzBytes decodes fuzz input into object fields: each choice takes one
// byte (zero once the input is used up), so short inputs give valid,
// simple objects and longer ones reach the odd values of every pool.
type fuzzBytes struct{ data []byte }

func (b *fuzzBytes) next() byte {
	if len(b.data) == 0 {
		return 0
	}
	c := b.data[0]
	b.data = b.data[1:]
	return c
}

func (b *fuzzBytes) intn(n int) int { return int(b.next()) % n }

// raw takes a short string straight from the input.
func (b *fuzzBytes) raw() string {
	n := min(b.intn(24), len(b.data))
	s := string(b.data[:n])
	b.data = b.data[n:]
	return s
}

// pick returns one of pool, or a raw string for the choice after the last.
func (b *fuzzBytes) pick(pool ...string) string {
	if i := b.intn(len(pool) + 1); i < len(pool) {
		return pool[i]
	}
	return b.raw()
}

// port returns a port-like number: mostly from a pool, sometimes any int32.
func (b *fuzzBytes) port(pool ...int32) int32 {
	if i := b.intn(len(pool) + 1); i < len(pool) {
		return pool[i]
	}
	var four [4]byte
	for i := range four {
		four[i] = b.next()
	}
	return int32(binary.BigEndian.Uint32(four[:]))
}

// count picks a number of items; the first choice is what zeros give.
func (b *fuzzBytes) count(choices ...int) int { return choices[b.intn(len(choices))] }

// optBool is nil, true or false.
func (b *fuzzBytes) optBool() *bool {
	switch b.intn(3) {
	case 1:
		return ptr.To(true)
	case 2:
		return ptr.To(false)
	}
	return nil
}

// Pools of values: valid ones first, then the kinds of garbage an API
// object can carry.
func fuzzServiceIPs() []string {
	return []string{"10.96.0.1", "fd00:96::1", "10.96.0.2", "None", "", "10.96.0.x", "::ffff:10.96.0.3",
		"fe80::1%eth0", "256.1.1.1", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "127.0.0.1", "192.168.0.10",
		"010.096.000.001", " 10.96.0.1", "fd00::10"}
}

func fuzzEndpointIPs() []string {
	return []string{"10.244.1.1", "10.244.1.2", "fd00:244::1", "not-an-ip", "10.244.1.300", "0.0.0.0",
		"::ffff:10.244.1.3", "fe80::2%eth0", "224.0.0.5", "::", "10.96.0.1", "255.255.255.255", ""}
}

func fuzzCIDRs() []string {
	return []string{"10.0.0.0/8", "192.168.0.10/32", "fd00::/8", "0.0.0.0/0", "bogus", "10.0.0.0/33", "::/0", ""}
}

func fuzzProtocols() []string { return []string{"TCP", "UDP", "SCTP", "", "ICMP", "tcp"} }
func fuzzPorts() []int32      { return []int32{80, 53, 443, 0, -1, 65535, 65536, 8080, 1} }
func fuzzNodePorts() []int32  { return []int32{0, 30080, 30053, -5, 65535, 70000, 80} }
func fuzzPortNames() []string { return []string{"http", "dns", "", "HTTP"} }

// fuzzNilEndpointPortProtocol lets the fuzzer leave an EndpointSlice
// port's protocol nil. The API server always defaults it, and upstream's
// EndpointSliceCache dereferences it; the proxier gives such ports TCP
// (sanitizeEndpointSlice) so that they cannot crash a sync.
const fuzzNilEndpointPortProtocol = true

// fuzzObjects decodes a handful of Services and their EndpointSlices.
func fuzzObjects(b *fuzzBytes) ([]*v1.Service, []*discovery.EndpointSlice) {
	var services []*v1.Service
	var slices []*discovery.EndpointSlice
	for i := range b.count(1, 2, 3) {
		svc := fuzzService(b, "svc-"+strconv.Itoa(i))
		services = append(services, svc)
		for j := range b.count(1, 2, 0) {
			slices = append(slices, fuzzSlice(b, svc.Name, svc.Name+"-"+strconv.Itoa(j)))
		}
	}
	return services, slices
}

func fuzzService(b *fuzzBytes, name string) *v1.Service {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	spec := &svc.Spec
	spec.Type = v1.ServiceType(b.pick("ClusterIP", "NodePort", "LoadBalancer", "ExternalName", ""))
	spec.ClusterIP = b.pick(fuzzServiceIPs()...)
	spec.ClusterIPs = []string{spec.ClusterIP}
	if b.intn(3) == 1 {
		spec.ClusterIPs = append(spec.ClusterIPs, b.pick(fuzzServiceIPs()...))
	}
	for range b.count(1, 2, 3) {
		spec.Ports = append(spec.Ports, v1.ServicePort{
			Name: b.pick(fuzzPortNames()...), Protocol: v1.Protocol(b.pick(fuzzProtocols()...)),
			Port: b.port(fuzzPorts()...), NodePort: b.port(fuzzNodePorts()...), TargetPort: intstr.FromInt32(b.port(fuzzPorts()...)),
		})
	}
	fuzzServiceOptions(b, svc)
	return svc
}

// fuzzServiceOptions fills affinity, traffic policies, external and
// load-balancer addresses, source ranges and the termination policy.
func fuzzServiceOptions(b *fuzzBytes, svc *v1.Service) {
	spec := &svc.Spec
	spec.SessionAffinity = v1.ServiceAffinity(b.pick("None", "ClientIP", ""))
	if b.intn(2) == 1 {
		timeout := b.port(10800, 0, -1, 86400, 86401)
		spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}}
	}
	spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicy(b.pick("Cluster", "Local", ""))
	if b.intn(2) == 1 {
		spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicy(b.pick("Cluster", "Local")))
	}
	spec.HealthCheckNodePort = b.port(0, 30100, -1, 70000)
	for range b.intn(3) {
		spec.ExternalIPs = append(spec.ExternalIPs, b.pick(fuzzServiceIPs()...))
	}
	for range b.intn(3) {
		ing := v1.LoadBalancerIngress{IP: b.pick(fuzzServiceIPs()...)}
		if b.intn(3) == 1 {
			ing.IPMode = ptr.To(v1.LoadBalancerIPMode(b.pick("VIP", "Proxy")))
		}
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, ing)
	}
	for range b.intn(3) {
		spec.LoadBalancerSourceRanges = append(spec.LoadBalancerSourceRanges, b.pick(fuzzCIDRs()...))
	}
	if policy := b.pick("", PolicyGraceful, PolicyImmediate); policy != "" {
		svc.Annotations = map[string]string{TerminationPolicyAnnotation: policy}
	}
}

func fuzzSlice(b *fuzzBytes, service, name string) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: discovery.AddressType(b.pick("IPv4", "IPv6", "FQDN")),
	}
	for range b.count(1, 2) {
		p := discovery.EndpointPort{Name: ptr.To(b.pick(fuzzPortNames()...))}
		if b.intn(4) != 3 {
			p.Port = ptr.To(b.port(8080, 53, 0, -1, 65536, 80))
		}
		p.Protocol = ptr.To(v1.Protocol(b.pick(fuzzProtocols()...)))
		if b.intn(4) == 3 && fuzzNilEndpointPortProtocol {
			p.Protocol = nil
		}
		s.Ports = append(s.Ports, p)
	}
	for range b.count(2, 1, 3, 0) {
		ep := discovery.Endpoint{Conditions: discovery.EndpointConditions{
			Ready: b.optBool(), Serving: b.optBool(), Terminating: b.optBool()}}
		for range b.count(1, 2) {
			ep.Addresses = append(ep.Addresses, b.pick(fuzzEndpointIPs()...))
		}
		if node := b.pick(testNode, "node-b", ""); node != "" {
			ep.NodeName = ptr.To(node)
		}
		if zone := b.pick("", "zone-a"); zone != "" {
			ep.Zone = ptr.To(zone)
			ep.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: zone}}}
		}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// FuzzBuildDesired feeds arbitrary Services and EndpointSlices through both
// families' proxiers on the fakes. Whatever the objects hold: no panic, no
// sync error (the fakes reject what the kernel would), nothing in IPVS or
// on kube-ipvs0 that does not come from a valid field of the objects; once
// the slices are deleted no real server takes new connections, and once
// the Services are deleted the table is empty.
func FuzzBuildDesired(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		services, slices := fuzzObjects(&fuzzBytes{data: data})
		k := newKernel(t)
		proxiers := []*Proxier{newTestProxier(t, k, testConfig(v1.IPv4Protocol)), newTestProxier(t, k, testConfig(v1.IPv6Protocol))}
		for _, p := range proxiers {
			for _, s := range services {
				p.OnServiceAdd(s)
			}
			for _, s := range slices {
				p.OnEndpointSliceAdd(s)
			}
		}
		fuzzSyncAll(t, proxiers)
		fuzzCheckOnlyValidObjects(t, k, services, slices)
		for _, p := range proxiers {
			for _, s := range slices {
				p.OnEndpointSliceDelete(s)
			}
		}
		fuzzSyncAll(t, proxiers)
		fuzzCheckNoLiveRealServers(t, k)
		for _, p := range proxiers {
			for _, s := range services {
				p.OnServiceDelete(s)
			}
		}
		fuzzSyncAll(t, proxiers)
		if dump := ipvsDump(k); dump != "" {
			t.Errorf("IPVS after deleting every object:\n%s", dump)
		}
	})
}

// fuzzCheckNoLiveRealServers: without endpoints, no real server may take
// new connections (weight 0 while draining is allowed).
func fuzzCheckNoLiveRealServers(t *testing.T, k *kernel) {
	t.Helper()
	vss, err := k.ipvs.List()
	must(t, err)
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			if d.Weight != 0 {
				t.Errorf("real server %s of %s keeps weight %d after its endpoints were deleted\n%s",
					d.DestinationKey, vs.ServiceKey, d.Weight, ipvsDump(k))
			}
		}
	}
}

func fuzzSyncAll(t *testing.T, proxiers []*Proxier) {
	t.Helper()
	for _, p := range proxiers {
		if err := p.syncProxyRules(); err != nil {
			t.Fatalf("%s sync: %v", p.cfg.IPFamily, err)
		}
	}
}

// fuzzValidAddr parses an address the way Kubernetes does (leading zeros
// are decimal, for objects written before stricter validation), IPv4-in-IPv6
// folded; anything else is not an address.
func fuzzValidAddr(s string) (netip.Addr, bool) {
	ip := netutils.ParseIPSloppy(s)
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

func fuzzValidPort(p int32) bool { return p >= 1 && p <= 65535 }

// fuzzAllowedServers lists every virtual server some valid field of the
// Services could ask for: a valid service IP with a valid port, or a node
// address with a valid node port, each with a protocol IPVS knows.
func fuzzAllowedServers(t *testing.T, k *kernel, services []*v1.Service) map[ipvs.ServiceKey]bool {
	nodeAddrs, err := k.netdev.LocalAddresses(DummyDevice)
	must(t, err)
	allowed := map[ipvs.ServiceKey]bool{}
	for _, svc := range services {
		var ips []netip.Addr
		for _, s := range append(append(append([]string{}, svc.Spec.ClusterIPs...), svc.Spec.ExternalIPs...), fuzzIngressIPs(svc)...) {
			if a, ok := fuzzValidAddr(s); ok {
				ips = append(ips, a)
			}
		}
		for _, port := range svc.Spec.Ports {
			proto := ipvs.Protocol(port.Protocol)
			if proto != ipvs.TCP && proto != ipvs.UDP && proto != ipvs.SCTP {
				continue
			}
			for _, a := range ips {
				if fuzzValidPort(port.Port) {
					allowed[ipvs.ServiceKey{Address: a, Protocol: proto, Port: uint16(port.Port)}] = true
				}
			}
			for _, a := range nodeAddrs {
				if fuzzValidPort(port.NodePort) {
					allowed[ipvs.ServiceKey{Address: a, Protocol: proto, Port: uint16(port.NodePort)}] = true
				}
			}
		}
	}
	return allowed
}

func fuzzIngressIPs(svc *v1.Service) []string {
	var out []string
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		out = append(out, ing.IP)
	}
	return out
}

// fuzzAllowedDestinations lists every valid endpoint address and port.
func fuzzAllowedDestinations(slices []*discovery.EndpointSlice) map[ipvs.DestinationKey]bool {
	allowed := map[ipvs.DestinationKey]bool{}
	for _, s := range slices {
		for _, p := range s.Ports {
			if p.Port == nil || !fuzzValidPort(*p.Port) {
				continue
			}
			for _, ep := range s.Endpoints {
				for _, addr := range ep.Addresses {
					if a, ok := fuzzValidAddr(addr); ok {
						allowed[ipvs.DestinationKey{Address: a, Port: uint16(*p.Port)}] = true
					}
				}
			}
		}
	}
	return allowed
}

func fuzzCheckOnlyValidObjects(t *testing.T, k *kernel, services []*v1.Service, slices []*discovery.EndpointSlice) {
	t.Helper()
	servers, dests := fuzzAllowedServers(t, k, services), fuzzAllowedDestinations(slices)
	vss, err := k.ipvs.List()
	must(t, err)
	for _, vs := range vss {
		if !servers[vs.ServiceKey] {
			t.Errorf("virtual server %s comes from no valid Service field\n%s", vs.ServiceKey, ipvsDump(k))
		}
		for _, d := range vs.Destinations {
			if !dests[d.DestinationKey] || d.Address.Is4() != vs.Address.Is4() {
				t.Errorf("real server %s of %s comes from no valid endpoint\n%s", d.DestinationKey, vs.ServiceKey, ipvsDump(k))
			}
		}
	}
	bound, err := k.netdev.Addresses(DummyDevice)
	must(t, err)
	for _, a := range bound {
		if a.IsLinkLocalUnicast() {
			continue
		}
		if !fuzzServesAddress(servers, a) {
			t.Errorf("%s bound on %s for no valid virtual server", a, DummyDevice)
		}
	}
}

func fuzzServesAddress(servers map[ipvs.ServiceKey]bool, a netip.Addr) bool {
	for key := range servers {
		if key.Address == a {
			return true
		}
	}
	return false
}
