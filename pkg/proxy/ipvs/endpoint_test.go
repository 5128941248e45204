package ipvs

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/kubernetes/pkg/proxy"
)

// The proxier's endpoints answer exactly as upstream's BaseEndpointInfo,
// in less than half its memory.
func TestEndpointIsUpstreamsInLessMemory(t *testing.T) {
	upstream := proxy.EndpointsMap{}
	for family, s := range map[v1.IPFamily]*discovery.EndpointSlice{
		v1.IPv4Protocol: slice("v4", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), localEP("10.244.1.2"),
			ep{ip: "10.244.1.3", node: "node-b", serving: true, terminating: true}, ep{ip: "10.244.1.4", zone: "zone-a"}),
		v1.IPv6Protocol: slice("v6", discovery.AddressTypeIPv6, readyEP("fd00::1"), ep{ip: "fd00::2", node: testNode, zone: "zone-b"}),
	} {
		tracker := proxy.NewEndpointsChangeTracker(family, testNode, nil, nil)
		tracker.EndpointSliceUpdate(s, false)
		upstream.Update(tracker)
	}
	n := 0
	for name, eps := range upstream {
		for _, want := range eps {
			got := newEndpoint(want)
			n++
			if got.String() != want.String() || got.IP() != want.IP() || got.Port() != want.Port() ||
				got.IsLocal() != want.IsLocal() || got.IsReady() != want.IsReady() || got.IsServing() != want.IsServing() ||
				got.IsTerminating() != want.IsTerminating() || !got.ZoneHints().Equal(want.ZoneHints()) || !got.NodeHints().Equal(want.NodeHints()) {
				t.Errorf("%s: endpoint %+v answers differently from upstream's %+v", name, got, want)
			}
		}
	}
	if n != 6 {
		t.Fatalf("compared %d endpoints, want 6", n)
	}
	if size, upstreamSize := unsafe.Sizeof(endpoint{}), unsafe.Sizeof(proxy.BaseEndpointInfo{}); size > 16 || size >= upstreamSize {
		t.Errorf("endpoint is %d bytes (upstream's %d), want at most 16", size, upstreamSize)
	}
}

// The endpoints the proxier keeps (upstream's EndpointsMap, filled by
// makeEndpoint) cost less than upstream's BaseEndpointInfo did.
func TestEndpointsMapKeepsLessPerEndpoint(t *testing.T) {
	const services = 1000
	_, p, slices := benchCluster(nil, services)
	syncOK(t, p)
	with := heapInUse()
	p.endpointsMap = nil
	kept := with - heapInUse()
	// Before: 144 bytes per endpoint (a 64-byte BaseEndpointInfo, its IP
	// and "ip:port" strings, the interface in the list). Now: 82 (a
	// 16-byte endpoint, the "ip:port" string, the interface in the list).
	if perEndpoint := kept / (services * 10); perEndpoint > 90 {
		t.Errorf("the endpoints map keeps %d bytes per endpoint, want at most 90", perEndpoint)
	}
	runtime.KeepAlive(slices)
	runtime.KeepAlive(p)
}

// proxierWithTwoEndpoints is a synced proxier with Service a and its slice
// of two ready endpoints, returned with the slice and the port's name.
func proxierWithTwoEndpoints(t *testing.T) (*Proxier, *discovery.EndpointSlice, proxy.ServicePortName) {
	t.Helper()
	p := newTestProxier(t, newKernel(t), testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	s := slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("10.244.1.2"))
	p.OnEndpointSliceAdd(s)
	syncOK(t, p)
	return p, s, proxy.ServicePortName{NamespacedName: nsName("a"), Port: "http", Protocol: v1.ProtocolTCP}
}

// A changed Service's endpoints are rebuilt by the tracker; those that did
// not change are the ones the proxier keeps already (no new object), one
// whose state changed is new.
func TestUnchangedEndpointsAreReused(t *testing.T) {
	p, before, name := proxierWithTwoEndpoints(t)
	old := slices.Clone(p.endpointsMap[name])
	terminating := readyEP("10.244.1.2")
	terminating.ready, terminating.terminating = false, true
	p.OnEndpointSliceUpdate(before, slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), terminating))
	syncOK(t, p)
	now := p.endpointsMap[name]
	if len(now) != 2 || now[0] != old[0] {
		t.Errorf("the unchanged endpoint %v was rebuilt (%p, was %p)", now[0], now[0], old[0])
	}
	if now[1] == old[1] || now[1].IsReady() || !now[1].IsTerminating() {
		t.Errorf("the endpoint that became terminating is %+v, the same object: %v", now[1], now[1] == old[1])
	}
}

// A valid service port without a termination policy override is kept as
// upstream's BaseServicePortInfo alone; one with an override or invalid is
// wrapped to carry it.
func TestServicePortWrappedOnlyWhenItCarriesSomething(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("plain", "10.96.0.1"))
	p.OnServiceAdd(svc("annotated", "10.96.0.2", withAnnotation(TerminationPolicyAnnotation, PolicyImmediate)))
	syncOK(t, p)
	port := func(name string) proxy.ServicePort {
		return p.svcPortMap[proxy.ServicePortName{NamespacedName: nsName(name), Port: "http", Protocol: v1.ProtocolTCP}]
	}
	if _, ok := port("plain").(*proxy.BaseServicePortInfo); !ok {
		t.Errorf("plain port kept as %T, want upstream's *proxy.BaseServicePortInfo", port("plain"))
	}
	if policy, _, ok := portSettings(port("annotated")); !ok || policy != PolicyImmediate {
		t.Errorf("annotated port kept as %T with policy %q, want %q", port("annotated"), policy, PolicyImmediate)
	}
}

// The port read back from the "ip:port" string is upstream's Port() for
// every shape the tracker makes: both families, an IPv4-mapped IPv6
// address, an address upstream could not parse ("<nil>"), the edge ports
// and ports the API would refuse; and so are String and IP.
func TestEndpointPortReadsBackForEveryShape(t *testing.T) {
	n := 0
	for _, port := range []int32{1, 2, 80, 8080, 65535, 65536, -1, 2147483647, -2147483648} {
		for family, ips := range map[v1.IPFamily][]string{
			v1.IPv4Protocol: {"10.244.1.1", "0.0.0.0", "255.255.255.255", "010.001.002.003", "not-an-ip"},
			v1.IPv6Protocol: {"fd00::1", "::ffff:10.244.1.1", "2001:db8:0:0:0:0:0:1", "::", "fd00::1%eth0", "[fd00::2]"},
		} {
			addrType := discovery.AddressTypeIPv4
			if family == v1.IPv6Protocol {
				addrType = discovery.AddressTypeIPv6
			}
			var eps []ep
			for _, ip := range ips {
				eps = append(eps, readyEP(ip))
			}
			s := slice("shapes", addrType, eps...)
			s.Ports[0].Port = &port
			upstream := proxy.EndpointsMap{}
			tracker := proxy.NewEndpointsChangeTracker(family, testNode, nil, nil)
			tracker.EndpointSliceUpdate(s, false)
			upstream.Update(tracker)
			for _, list := range upstream {
				for _, want := range list {
					got := newEndpoint(want)
					n++
					if _, ours := got.(*endpoint); !ours {
						t.Errorf("%s: kept upstream's object", want)
					}
					if got.String() != want.String() || got.IP() != want.IP() || got.Port() != want.Port() {
						t.Errorf("endpoint %q: String %q IP %q Port %d, upstream's %q %q %d",
							want, got.String(), got.IP(), got.Port(), want.String(), want.IP(), want.Port())
					}
				}
			}
		}
	}
	if n < 9*5 {
		t.Fatalf("compared %d endpoints, want every shape", n)
	}
}

// longEndpoint is a proxy.Endpoint whose string is as long as wanted.
type longEndpoint struct {
	proxy.Endpoint
	s string
}

func (e longEndpoint) String() string { return e.s }

// A string that fits the 16-bit length (65,535 bytes) is kept in an
// endpoint, whole; a longer one keeps upstream's object.
func TestEndpointStringTooLongKeepsUpstreamsObject(t *testing.T) {
	base := proxy.Endpoint(&endpoint{})
	for _, size := range []int{0, 1, 65535, 65536, 1 << 20} {
		s := strings.Repeat("1", size-min(size, 3)) + ":80"[:min(size, 3)]
		info := longEndpoint{Endpoint: base, s: s}
		got := newEndpoint(info)
		_, ours := got.(*endpoint)
		if wantOurs := size <= 65535; ours != wantOurs {
			t.Errorf("a %d-byte string: kept in our endpoint %t, want %t", size, ours, wantOurs)
		}
		if got.String() != s {
			t.Errorf("a %d-byte string comes back as %d bytes", size, len(got.String()))
		}
	}
}

// Two endpoints of equal strings at different addresses are the same
// endpoint to everything the proxier asks (no pointer compared), and an
// endpoint does not follow the EndpointSlice it came from when the
// informer's object is rewritten in place afterwards.
func TestEndpointStringIsItsOwn(t *testing.T) {
	p, s, name := proxierWithTwoEndpoints(t)
	kept := p.endpointsMap[name][0]
	s.Endpoints[0].Addresses[0] = "10.244.9.9" // rewritten in place, no event
	*s.Ports[0].Port = 9999
	if kept.String() != "10.244.1.1:8080" || kept.Port() != 8080 {
		t.Fatalf("the kept endpoint follows its slice's object: %q port %d", kept.String(), kept.Port())
	}
	a := []byte("10.244.1.1:8080")
	b := []byte("10.244.1.1:8080")
	ea := newEndpoint(longEndpoint{Endpoint: kept, s: string(a)})
	eb := newEndpoint(longEndpoint{Endpoint: kept, s: string(b)})
	a[0], b[0] = '9', '9'
	if ea.String() != eb.String() || destKey(ea) != destKey(eb) || ea.String() != "10.244.1.1:8080" {
		t.Fatalf("equal strings at different addresses: %q %v, %q %v", ea, destKey(ea), eb, destKey(eb))
	}
}
