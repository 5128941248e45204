package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Tests of the kernel mirror that keeps only differences
// (issue 16): whatever happened to the kernel, the syncs after it must end
// where a proxier that saw no fault ends, on the kernel's dumps.

// twin is a proxier on its own fake kernel, fed the same events as the one
// under test but never faulted nor tampered with: its kernel is the
// expected end state.
type twin struct {
	k *kernel
	p *Proxier
}

// pair runs every event on the proxier under test and on its twin.
type pair struct {
	t    *testing.T
	k    *kernel
	p    *Proxier
	twin twin
}

// ip is a test address in the pair's family: an IPv6 one made of the
// IPv4 one's bytes for an IPv6 proxier.
func (pr *pair) ip(v4 string) string {
	if pr.p.cfg.IPFamily == v1.IPv4Protocol {
		return v4
	}
	b := netip.MustParseAddr(v4).As4()
	return fmt.Sprintf("fd00:%x:%x::%x:%x", b[0], b[1], b[2], b[3])
}

func (pr *pair) addrType() discovery.AddressType {
	if pr.p.cfg.IPFamily == v1.IPv4Protocol {
		return discovery.AddressTypeIPv4
	}
	return discovery.AddressTypeIPv6
}

// sourceRange is a load balancer's source range in the family of ip.
func sourceRange(ip string) string {
	if netip.MustParseAddr(ip).Is4() {
		return "198.51.100.0/24"
	}
	return "fd00:198:51::/64"
}

func newPair(t *testing.T, cfg Config) *pair {
	k, tk := newKernel(t), newKernel(t)
	return &pair{t: t, k: k, p: newTestProxier(t, k, cfg), twin: twin{k: tk, p: newTestProxier(t, tk, cfg)}}
}

func (pr *pair) each(f func(p *Proxier)) {
	f(pr.p)
	f(pr.twin.p)
}

// syncTwin syncs the twin alone (it never fails).
func (pr *pair) syncTwin() { syncOK(pr.t, pr.twin.p) }

// syncBoth syncs the proxier under test, which must succeed, and its twin.
func (pr *pair) syncBoth() {
	pr.t.Helper()
	syncOK(pr.t, pr.p)
	pr.syncTwin()
}

// syncConverged syncs both and checks that they converged.
func (pr *pair) syncConverged(when string) {
	pr.t.Helper()
	pr.syncBoth()
	pr.converged(when)
}

func kernelDump(k *kernel) string {
	var dev []string
	for _, l := range strings.Split(k.netdev.Dump(), "\n") {
		if !strings.HasPrefix(l, "  fe80::ff:fe") { // the dummy's own, new with each device
			dev = append(dev, l)
		}
	}
	return "ipvs:\n" + k.ipvs.Dump() + "ipset:\n" + k.ipset.Dump() + "netdev:\n" + strings.Join(dev, "\n")
}

// converged checks the kernel under test against the twin's, and the
// mirror against a fresh read.
func (pr *pair) converged(when string) {
	pr.t.Helper()
	if got, want := kernelDump(pr.k), kernelDump(pr.twin.k); got != want {
		pr.t.Errorf("%s: kernel differs from a proxier's that saw no fault\n--- got\n%s\n--- want\n%s", when, got, want)
	}
	checkObservedIsKernel(pr.t, pr.p, when)
}

// mixedCluster is a small cluster with every kind of object a
// contribution makes: cluster IPs, a node port, a shared external IP, UDP,
// a load balancer with source ranges, a local endpoint (hairpin), both
// policies.
func mixedCluster(pr *pair) {
	pr.each(func(p *Proxier) {
		p.OnServiceAdd(svc("a", pr.ip("10.96.0.1"), withAnnotation(TerminationPolicyAnnotation, PolicyImmediate)))
		p.OnEndpointSliceAdd(slice("a", pr.addrType(), readyEP(pr.ip("10.244.1.1")), readyEP(pr.ip("10.244.1.2"))))
		p.OnServiceAdd(svc("b", pr.ip("10.96.0.2"), func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30080
		}))
		p.OnEndpointSliceAdd(slice("b", pr.addrType(), localEP(pr.ip("10.244.2.1")), readyEP(pr.ip("10.244.2.2"))))
		p.OnServiceAdd(svc("c", pr.ip("10.96.0.3"), withProto(v1.ProtocolUDP), func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{pr.ip("203.0.113.1")}
		}))
		p.OnEndpointSliceAdd(udpSlice(pr.addrType(), "c", readyEP(pr.ip("10.244.3.1"))))
		p.OnServiceAdd(lbService("e", pr.ip("10.96.0.5"), 30090, pr.ip("192.0.2.5")))
		p.OnEndpointSliceAdd(slice("e", pr.addrType(), readyEP(pr.ip("10.244.5.1"))))
	})
}

func udpSlice(family discovery.AddressType, name string, eps ...ep) *discovery.EndpointSlice {
	s := slice(name, family, eps...)
	udp := v1.ProtocolUDP
	s.Ports[0].Protocol = &udp
	return s
}

func lbService(name, clusterIP string, nodePort int32, ingress string) *v1.Service {
	return svc(name, clusterIP, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = nodePort
		s.Spec.LoadBalancerSourceRanges = []string{sourceRange(clusterIP)}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ingress}}
	})
}

// changeEverything changes every kind of object at once: endpoints replaced, a
// Service deleted, one added sharing an external IP, an endpoint
// terminating, a Service changing type and ports.
func changeEverything(pr *pair) {
	pr.each(func(p *Proxier) {
		p.OnEndpointSliceUpdate(slice("a", pr.addrType(), readyEP(pr.ip("10.244.1.1")), readyEP(pr.ip("10.244.1.2"))),
			slice("a", pr.addrType(), readyEP(pr.ip("10.244.1.1")), readyEP(pr.ip("10.244.1.3"))))
		p.OnServiceDelete(svc("b", pr.ip("10.96.0.2")))
		p.OnEndpointSliceDelete(slice("b", pr.addrType()))
		p.OnServiceAdd(svc("d", pr.ip("10.96.0.4"), withProto(v1.ProtocolUDP), func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30081
			s.Spec.ExternalIPs = []string{pr.ip("203.0.113.1")}
			s.Spec.Ports[0].Port = 81
		}))
		p.OnEndpointSliceAdd(udpSlice(pr.addrType(), "d", readyEP(pr.ip("10.244.4.1"))))
		terminating := readyEP(pr.ip("10.244.3.1"))
		terminating.ready, terminating.terminating = false, true
		p.OnEndpointSliceUpdate(udpSlice(pr.addrType(), "c", readyEP(pr.ip("10.244.3.1"))), udpSlice(pr.addrType(), "c", terminating, readyEP(pr.ip("10.244.3.2"))))
		p.OnServiceUpdate(lbService("e", pr.ip("10.96.0.5"), 30090, pr.ip("192.0.2.5")), svc("e", pr.ip("10.96.0.5"), func(s *v1.Service) {
			s.Spec.Ports[0].Port = 8000
			s.Spec.ExternalIPs = []string{pr.ip("203.0.113.9")}
		}))
	})
}

// laterPartialChange is a change after the repair: a partial sync that relies on
// the mirror the repair left.
func laterPartialChange(pr *pair) {
	pr.each(func(p *Proxier) {
		p.OnEndpointSliceUpdate(slice("a", pr.addrType(), readyEP(pr.ip("10.244.1.1")), readyEP(pr.ip("10.244.1.3"))),
			slice("a", pr.addrType(), readyEP(pr.ip("10.244.1.3")), readyEP(pr.ip("10.244.1.4"))))
		p.OnEndpointSliceUpdate(udpSlice(pr.addrType(), "d", readyEP(pr.ip("10.244.4.1"))), udpSlice(pr.addrType(), "d", readyEP(pr.ip("10.244.4.1")), readyEP(pr.ip("10.244.4.2"))))
		p.OnServiceAdd(svc("f", pr.ip("10.96.0.6"), func(s *v1.Service) { s.Spec.ExternalIPs = []string{pr.ip("203.0.113.1")} }))
		p.OnEndpointSliceAdd(slice("f", pr.addrType(), localEP(pr.ip("10.244.6.1"))))
	})
}

// failNth makes the n-th kernel write (IPVS, ipset or address; counted
// from 1) fail, and counts them.
type failNth struct {
	n, calls int
}

func (f *failNth) inject(op, object string) error {
	f.calls++
	if f.calls == f.n {
		return syscall.ENOMEM
	}
	return nil
}

func (f *failNth) install(k *kernel) {
	k.ipvs.Inject, k.ipset.Inject, k.netdev.Inject = f.inject, f.inject, f.inject
}

func uninstall(k *kernel) { k.ipvs.Inject, k.ipset.Inject, k.netdev.Inject = nil, nil, nil }

// A write failing anywhere in a full or a partial sync: the next sync ends
// where a sync without the fault does, and so does a partial sync after it.
func TestFaultOnAnyWriteConverges(t *testing.T) {
	for _, tc := range []struct {
		family  v1.IPFamily
		partial bool
	}{{v1.IPv4Protocol, false}, {v1.IPv4Protocol, true}, {v1.IPv6Protocol, false}, {v1.IPv6Protocol, true}} {
		partial := tc.partial
		writes := countWrites(t, tc.family, partial)
		for n := 1; n <= writes; n++ {
			t.Run(fmt.Sprintf("%s partial=%v write %d of %d", tc.family, partial, n, writes), func(t *testing.T) {
				pr := newPair(t, testConfig(tc.family))
				mixedCluster(pr)
				if partial {
					pr.syncBoth()
					changeEverything(pr)
				}
				f := &failNth{n: n}
				f.install(pr.k)
				err := pr.p.syncProxyRules()
				uninstall(pr.k)
				if err == nil {
					t.Fatalf("write %d failed, the sync did not", n)
				}
				pr.syncConverged("after the retry")
				laterPartialChange(pr)
				pr.syncConverged("after a later partial sync")
			})
		}
	}
}

// countWrites counts the kernel writes of the sync TestFaultOnAnyWriteConverges faults.
func countWrites(t *testing.T, family v1.IPFamily, partial bool) int {
	pr := newPair(t, testConfig(family))
	mixedCluster(pr)
	if partial {
		syncOK(t, pr.p)
		changeEverything(pr)
	}
	f := &failNth{}
	f.install(pr.k)
	syncOK(t, pr.p)
	uninstall(pr.k)
	if partial && pr.p.lastFullSync.IsZero() {
		t.Fatal("no full sync ran")
	}
	return f.calls
}

// tamper is a change made to the kernel behind the proxier's back.
type tamper struct {
	name string
	do   func(t *testing.T, k *kernel)
}

func key(addr string, proto ipvs.Protocol, port uint16) ipvs.ServiceKey {
	return ipvs.ServiceKey{Address: netip.MustParseAddr(addr), Protocol: proto, Port: port}
}

func dest(addr string, port uint16) ipvs.DestinationKey {
	return ipvs.DestinationKey{Address: netip.MustParseAddr(addr), Port: port}
}

func vsOf(t *testing.T, k *kernel, sk ipvs.ServiceKey) ipvs.Service {
	t.Helper()
	vss, err := k.ipvs.List()
	must(t, err)
	for _, vs := range vss {
		if vs.ServiceKey == sk {
			return vs.Service
		}
	}
	t.Fatalf("no virtual server %s", sk)
	return ipvs.Service{}
}

var tampers = []tamper{
	{"real server deleted", func(t *testing.T, k *kernel) {
		must(t, k.ipvs.DeleteDestination(key("10.96.0.1", ipvs.TCP, 80), dest("10.244.1.1", 8080)))
	}},
	{"real server weight 0", func(t *testing.T, k *kernel) {
		must(t, k.ipvs.UpdateDestination(key("10.96.0.1", ipvs.TCP, 80), ipvs.Destination{DestinationKey: dest("10.244.1.1", 8080), Weight: 0}))
	}},
	{"real server weight 5", func(t *testing.T, k *kernel) {
		must(t, k.ipvs.UpdateDestination(key("10.96.0.5", ipvs.TCP, 80), ipvs.Destination{DestinationKey: dest("10.244.5.1", 8080), Weight: 5}))
	}},
	{"scheduler changed", func(t *testing.T, k *kernel) {
		s := vsOf(t, k, key("10.96.0.1", ipvs.TCP, 80))
		s.Scheduler = "wrr"
		must(t, k.ipvs.UpdateService(s))
	}},
	{"persistence and timeout set", func(t *testing.T, k *kernel) {
		s := vsOf(t, k, key("10.96.0.3", ipvs.UDP, 80))
		s.Flags |= ipvs.FlagPersistent
		s.Timeout = 77
		must(t, k.ipvs.UpdateService(s))
	}},
	{"virtual server deleted", func(t *testing.T, k *kernel) {
		must(t, k.ipvs.DeleteService(key("203.0.113.1", ipvs.UDP, 80)))
	}},
	{"IPVS flushed", func(t *testing.T, k *kernel) { must(t, k.ipvs.Flush()) }},
	{"extra virtual server and real server", func(t *testing.T, k *kernel) {
		must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: key("10.96.9.9", ipvs.TCP, 80), Scheduler: "rr", Netmask: 0xffffffff}))
		must(t, k.ipvs.AddDestination(key("10.96.0.1", ipvs.TCP, 80), ipvs.Destination{DestinationKey: dest("10.244.9.9", 8080), Weight: 1}))
	}},
	{"cluster IP member removed", func(t *testing.T, k *kernel) {
		must(t, k.ipset.DeleteEntry(setClusterIP, ipset.Entry{IP: netip.MustParseAddr("10.96.0.1"), Protocol: "tcp", Port: 80}))
	}},
	{"node port member removed", func(t *testing.T, k *kernel) {
		must(t, k.ipset.DeleteEntry(setNodePortTCP, ipset.Entry{Port: 30080}))
	}},
	{"KUBE-IPVS-IPS member removed", func(t *testing.T, k *kernel) {
		must(t, k.ipset.DeleteEntry(setIPVSAddresses, ipset.Entry{IP: netip.MustParseAddr("203.0.113.1")}))
	}},
	{"hairpin member removed", func(t *testing.T, k *kernel) {
		a := netip.MustParseAddr("10.244.2.1")
		must(t, k.ipset.DeleteEntry(setLoopBack, ipset.Entry{IP: a, Protocol: "tcp", Port: 8080, IP2: a}))
	}},
	{"extra set members", func(t *testing.T, k *kernel) {
		must(t, k.ipset.AddEntry(setClusterIP, ipset.Entry{IP: netip.MustParseAddr("10.96.9.9"), Protocol: "tcp", Port: 80}))
		must(t, k.ipset.AddEntry(setIPVSAddresses, ipset.Entry{IP: netip.MustParseAddr("10.96.9.9")}))
	}},
	{"set destroyed", func(t *testing.T, k *kernel) { must(t, k.ipset.DestroySet(setLBSourceCIDR)) }},
	{"address removed", func(t *testing.T, k *kernel) {
		must(t, k.netdev.DeleteAddress(DummyDevice, netip.MustParseAddr("10.96.0.2")))
	}},
	{"extra address", func(t *testing.T, k *kernel) {
		must(t, k.netdev.AddAddress(DummyDevice, netip.MustParseAddr("10.96.9.9")))
	}},
	{"device deleted", func(t *testing.T, k *kernel) { must(t, k.netdev.DeleteDummy(DummyDevice)) }},
}

// Drift on objects the mirror implies (it believes them as wanted): the
// next full sync repairs it, with or without a partial sync in between,
// and a partial sync after the repair still finds the mirror right.
func TestDriftOnImpliedObjectsIsRepaired(t *testing.T) {
	for _, tm := range tampers {
		for _, between := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, partial sync between=%v", tm.name, between), func(t *testing.T) {
				pr := newPair(t, testConfig(v1.IPv4Protocol))
				mixedCluster(pr)
				pr.syncBoth()
				tm.do(t, pr.k)
				if between {
					changeEverything(pr)
					_ = pr.p.syncProxyRules() // may trip over the drift: the next is full then
					pr.syncTwin()
				}
				passSyncPeriod(pr.p)
				pr.syncConverged("after the full sync")
				if !between {
					changeEverything(pr)
					pr.syncConverged("after a partial sync")
				}
				laterPartialChange(pr)
				pr.syncConverged("after a later partial sync")
			})
		}
	}
}

// A restart over a weight-0 leftover with connections (a graceful drain of
// the earlier run): the mirror keeps it through partial syncs of its own
// Service and of others, and it is deleted by the first sync of its
// Service that finds it idle, never before.
func TestRestartLeftoverDrainsThroughPartialSyncs(t *testing.T) {
	k := newKernel(t)
	must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: vipKey, Scheduler: "rr", Netmask: 0xffffffff}))
	must(t, k.ipvs.AddDestination(vipKey, ipvs.Destination{DestinationKey: oldDest, Weight: 0}))
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 7, 0))
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	web := slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String()))
	p.OnServiceAdd(svc("web", vip.String()))
	p.OnEndpointSliceAdd(web)
	syncOK(t, p)
	p.OnServiceAdd(svc("other", "10.96.0.9"))
	p.OnEndpointSliceAdd(slice("other", discovery.AddressTypeIPv4, readyEP("10.244.9.1")))
	syncOK(t, p)
	webMore := slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String()), readyEP("10.244.1.3"))
	p.OnEndpointSliceUpdate(web, webMore)
	syncOK(t, p)
	wantDump(t, "ipvs while the leftover has connections", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=7 inactive=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.3:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.9:80 rr flags=0x2 timeout=0
		  -> 10.244.9.1:8080 weight=1 active=0 inactive=0`)
	checkObservedIsKernel(t, p, "with the leftover")
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 0))
	p.OnEndpointSliceUpdate(webMore, web)
	syncOK(t, p)
	wantDump(t, "ipvs once the leftover is idle", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.9:80 rr flags=0x2 timeout=0
		  -> 10.244.9.1:8080 weight=1 active=0 inactive=0`)
	checkObservedIsKernel(t, p, "after the leftover went")
}
