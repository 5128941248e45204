package ipvs

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// withHashMask runs f with the indexes' hashes cut to mask's bits (0: every
// key of either index in one chain), then restores them.
func withHashMask(mask uint64, f func()) {
	saved := hashCleared.Swap(^mask)
	defer hashCleared.Store(saved)
	f()
}

// The tests that end on kernel dumps, with every key sharing a chain (mask
// 0) and with a few chains (mask 3): the chains' key comparisons decide
// every look-up, removal and listing.
func TestKernelEndStateWithForcedHashCollisions(t *testing.T) {
	for _, mask := range []uint64{0, 3} {
		withHashMask(mask, func() {
			for _, tc := range []struct {
				name string
				f    func(*testing.T)
			}{
				{"golden scenario", TestScenarioKernelStateMatchesTheGolden},
				{"fault on any write", TestFaultOnAnyWriteConverges},
				{"drift repaired", TestDriftOnImpliedObjectsIsRepaired},
				{"observed is kernel", TestObservedStateIsWhatTheKernelHolds},
				{"cluster IP member", TestClusterIPMemberFollowsTheClaims},
				{"dual stack", TestDualStackProxiersShareTheKernel},
				{"partial sync", TestPartialSyncTouchesOnlyWhatChanged},
			} {
				t.Run(fmt.Sprintf("mask %#x: %s", mask, tc.name), tc.f)
			}
		})
	}
}

// collisionCluster is a cluster of Services with several ports each
// (cluster IP, external IPs, load-balancer IPs, node ports on two node
// addresses), changed at random: ports renamed, added and removed, types
// and IPs changed, Services deleted, endpoints replaced. No two Services
// claim one virtual server (which one wins is the order of the claims), but
// addresses and set members are shared.
type collisionCluster struct {
	family   v1.IPFamily
	services map[string]*v1.Service
	slices   map[string]*discovery.EndpointSlice
	next     int
}

func (c *collisionCluster) ip(v4 string) string {
	if c.family == v1.IPv4Protocol {
		return v4
	}
	b := netip.MustParseAddr(v4).As4()
	return fmt.Sprintf("fd00:%x:%x::%x:%x", b[0], b[1], b[2], b[3])
}

func (c *collisionCluster) addrType() discovery.AddressType {
	if c.family == v1.IPv4Protocol {
		return discovery.AddressTypeIPv4
	}
	return discovery.AddressTypeIPv6
}

// nodeAddr2 is the node's second address (on eth1), an external IP at times.
func (c *collisionCluster) nodeAddr2() string {
	if c.family == v1.IPv4Protocol {
		return "192.168.1.10"
	}
	return "fd00:1::10"
}

// service makes Service number i in a random shape; its ports are unique to
// it (1000+10i+j), so no virtual server is claimed twice.
func (c *collisionCluster) service(rng *rand.Rand, name string, i int) *v1.Service {
	s := svc(name, c.ip(fmt.Sprintf("10.96.%d.%d", rng.IntN(2), 1+i%200))) // a reshape may move it)
	s.Spec.Ports = nil
	for j := range 1 + rng.IntN(3) {
		proto := []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}[rng.IntN(3)]
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{
			Name: fmt.Sprintf("p%d", rng.IntN(4)*10+j), Protocol: proto, Port: int32(1000 + 10*i + j),
			TargetPort: intstr.FromInt32(8080),
		})
	}
	switch rng.IntN(4) {
	case 1:
		s.Spec.Type = v1.ServiceTypeNodePort
	case 2:
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: c.ip(fmt.Sprintf("192.0.2.%d", 1+rng.IntN(3)))}}
		if rng.IntN(2) == 0 {
			s.Spec.LoadBalancerSourceRanges = []string{sourceRange(c.ip("10.0.0.1"))}
		}
	}
	if s.Spec.Type != v1.ServiceTypeClusterIP {
		for j := range s.Spec.Ports {
			s.Spec.Ports[j].NodePort = int32(30000 + 10*i + j)
		}
		if rng.IntN(3) == 0 {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		}
	}
	for range rng.IntN(3) {
		ext := []string{c.ip("203.0.113.1"), c.ip("203.0.113.2"), c.nodeAddr2(), s.Spec.ClusterIP}[rng.IntN(4)]
		if !slices.Contains(s.Spec.ExternalIPs, ext) {
			s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, ext)
		}
	}
	if rng.IntN(4) == 0 {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}
	return s
}

// slice gives the Service's ports a few endpoints (port names as the
// Service's, so that each service port has them).
func (c *collisionCluster) slice(rng *rand.Rand, s *v1.Service) *discovery.EndpointSlice {
	var eps []ep
	for range rng.IntN(4) {
		e := readyEP(c.ip(fmt.Sprintf("10.244.%d.%d", rng.IntN(3), 1+rng.IntN(5))))
		switch rng.IntN(5) {
		case 0:
			e.node = testNode
		case 1:
			e.ready, e.terminating = false, true
		}
		if !slices.ContainsFunc(eps, func(x ep) bool { return x.ip == e.ip }) {
			eps = append(eps, e)
		}
	}
	es := slice(s.Name, c.addrType(), eps...)
	es.Ports = nil
	for _, p := range s.Spec.Ports {
		es.Ports = append(es.Ports, discovery.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To[int32](int32(8080 + rng.IntN(2))), Protocol: ptr.To(p.Protocol)})
	}
	return es
}

// change makes one random change on every proxier and says what it was.
func (c *collisionCluster) change(rng *rand.Rand, proxiers ...*Proxier) string {
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range c.services {
			if !yield(n) {
				return
			}
		}
	})
	var what string
	var oldS, newS *v1.Service
	var oldE, newE *discovery.EndpointSlice
	if len(names) == 0 || rng.IntN(5) == 0 {
		c.next++
		name := fmt.Sprintf("s%d", c.next)
		newS = c.service(rng, name, c.next)
		newE = c.slice(rng, newS)
		what = "added " + name
	} else {
		name := names[rng.IntN(len(names))]
		oldS, oldE = c.services[name], c.slices[name]
		var i int
		fmt.Sscanf(name, "s%d", &i)
		switch rng.IntN(4) {
		case 0:
			what = "deleted " + name
		case 1:
			newS, newE = oldS, c.slice(rng, oldS)
			what = "endpoints of " + name
		default: // a new shape: ports renamed, added, removed; type and IPs changed
			newS = c.service(rng, name, i)
			newE = c.slice(rng, newS)
			what = "reshaped " + name
		}
	}
	for _, p := range proxiers {
		switch {
		case oldS == nil:
			p.OnServiceAdd(newS)
			p.OnEndpointSliceAdd(newE)
		case newS == nil:
			p.OnServiceDelete(oldS)
			p.OnEndpointSliceDelete(oldE)
		default:
			if newS != oldS {
				p.OnServiceUpdate(oldS, newS)
			}
			p.OnEndpointSliceUpdate(oldE, newE)
		}
	}
	if newS != nil {
		c.services[newS.Name], c.slices[newS.Name] = newS, newE
	} else {
		delete(c.services, oldS.Name)
		delete(c.slices, oldS.Name)
	}
	return what
}

// checkModel checks the kernel against what the Services ask for, counted
// without the proxier: the virtual servers (cluster IP, external IPs,
// load-balancer IPs and the node ports on both node addresses) and the
// addresses bound on kube-ipvs0 and listed in KUBE-IPVS-IPS (cluster IPs,
// external IPs not the node's, load-balancer IPs), each exactly while some
// Service uses it.
func (c *collisionCluster) checkModel(t *testing.T, k *kernel, when string) {
	t.Helper()
	wantVS, wantBound := map[string]bool{}, map[netip.Addr]bool{}
	nodeAddrs := []string{"192.168.0.10", c.nodeAddr2()}
	if c.family == v1.IPv6Protocol {
		nodeAddrs[0] = "fd00::10"
	}
	for _, s := range c.services {
		wantBound[netip.MustParseAddr(s.Spec.ClusterIP)] = true
		var lbs []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			lbs = append(lbs, in.IP)
			wantBound[netip.MustParseAddr(in.IP)] = true
		}
		for _, e := range s.Spec.ExternalIPs {
			if !slices.Contains(nodeAddrs, e) {
				wantBound[netip.MustParseAddr(e)] = true
			}
		}
		for _, sp := range s.Spec.Ports {
			vs := func(addr string, port int32) {
				wantVS[fmt.Sprintf("%s %s", sp.Protocol, netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)))] = true
			}
			vs(s.Spec.ClusterIP, sp.Port)
			for _, a := range append(slices.Clone(s.Spec.ExternalIPs), lbs...) {
				vs(a, sp.Port)
			}
			if sp.NodePort != 0 {
				for _, a := range nodeAddrs {
					vs(a, sp.NodePort)
				}
			}
		}
	}
	vss, err := k.ipvs.List()
	must(t, err)
	var got, want []string
	for _, v := range vss {
		got = append(got, fmt.Sprintf("%s %s", v.Protocol, netip.AddrPortFrom(v.Address, v.Port)))
	}
	for v := range wantVS {
		want = append(want, v)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: virtual servers\n%q\nwant\n%q", when, got, want)
	}
	addrs, err := k.netdev.Addresses(DummyDevice)
	must(t, err)
	var gotBound, wantBoundList, inSet []string
	for _, a := range addrs {
		if !a.IsLinkLocalUnicast() {
			gotBound = append(gotBound, a.String())
		}
	}
	for a := range wantBound {
		wantBoundList = append(wantBoundList, a.String())
	}
	sets, err := k.ipset.List(nil)
	must(t, err)
	for _, set := range sets {
		if set.Name == setName(setIPVSAddresses, c.family) {
			for _, e := range set.Entries {
				inSet = append(inSet, e.IP.String())
			}
		}
	}
	slices.Sort(gotBound)
	slices.Sort(wantBoundList)
	slices.Sort(inSet)
	if !slices.Equal(gotBound, wantBoundList) || !slices.Equal(inSet, wantBoundList) {
		t.Fatalf("%s: bound on %s %q, in KUBE-IPVS-IPS %q, want %q", when, DummyDevice, gotBound, inSet, wantBoundList)
	}
}

// feed gives a new proxier every current object (a restart).
func (c *collisionCluster) feed(p *Proxier) {
	for name, s := range c.services {
		p.OnServiceAdd(s)
		p.OnEndpointSliceAdd(c.slices[name])
	}
}

// Services of several ports (cluster IP, external IPs, load-balancer IPs,
// node ports on two node addresses) changed at random, synced partially
// and fully, with writes failing, the kernel tampered with and the proxier
// restarted, all with the indexes' keys forced into a few chains or one: the
// kernel ends each step as a twin's does, whose hashes are whole and which
// saw no fault.
func TestCollidingKeysEndAsTwinWithWholeHashes(t *testing.T) {
	for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		for _, mask := range []uint64{0, 1, 7} {
			for seed := range uint64(6) {
				gate := seed%2 == 0
				t.Run(fmt.Sprintf("%s mask %#x seed %d gate %t", family, mask, seed, gate), func(t *testing.T) {
					collidingRun(t, family, mask, seed, gate)
				})
			}
		}
	}
}

func collidingRun(t *testing.T, family v1.IPFamily, mask, seed uint64, gate bool) {
	rng := rand.New(rand.NewPCG(seed, mask))
	cfg := testConfig(family)
	cfg.ImmediateTermination = gate
	k, tk := newKernel(t), newKernel(t)
	for _, kk := range []*kernel{k, tk} {
		must(t, kk.netdev.AddDevice("eth1", netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("fd00:1::10")))
	}
	var p *Proxier
	withHashMask(mask, func() { p = newTestProxier(t, k, cfg) })
	twinP := newTestProxier(t, tk, cfg)
	c := &collisionCluster{family: family, services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}}
	for range 6 {
		withHashMask(mask, func() { c.change(rng, p, twinP) })
	}
	for step := range 50 {
		var what string
		withHashMask(mask, func() {
			what = c.change(rng, p, twinP)
			switch rng.IntN(8) {
			case 0: // a restart over the kernel the earlier run wrote
				p = newTestProxier(t, k, cfg)
				c.feed(p)
				what += ", restarted"
			case 1:
				passSyncPeriod(p)
				what += ", full sync"
			case 2: // a write failing mid-sync; the retry is full
				n := 1 + rng.IntN(6)
				f := &failNth{n: n}
				f.install(k)
				_ = p.syncProxyRules()
				uninstall(k)
				what += fmt.Sprintf(", write %d failed", n)
			case 3:
				if vss, err := k.ipvs.List(); err == nil && len(vss) > 0 {
					must(t, k.ipvs.DeleteService(vss[rng.IntN(len(vss))].ServiceKey))
					passSyncPeriod(p)
					what += ", a virtual server deleted behind its back"
				}
			}
			if err := p.syncProxyRules(); err != nil {
				t.Fatalf("step %d (%s): %v", step, what, err)
			}
		})
		syncOK(t, twinP)
		if got, want := kernelDump(k), kernelDump(tk); got != want {
			t.Fatalf("step %d (%s): kernel differs from the twin's\n--- got\n%s\n--- want\n%s", step, what, got, want)
		}
		withHashMask(mask, func() { checkObservedIsKernel(t, p, fmt.Sprintf("step %d (%s)", step, what)) })
		c.checkModel(t, k, fmt.Sprintf("step %d (%s)", step, what))
	}
}

// Two Services claiming one virtual server (an external IP and port of
// both; the first claim wins, which is a misconfiguration) with their keys
// forced into one chain with every other: when either claim goes, the
// virtual server serves the other's endpoints exactly, its address stays
// bound while either uses it, and when both go it is deleted and unbound.
func TestSharedVirtualServerFollowsTheRemainingClaim(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0} {
		for _, drop := range []string{"a", "b"} {
			t.Run(fmt.Sprintf("mask %#x, %s deleted", mask, drop), func(t *testing.T) {
				withHashMask(mask, func() { sharedClaims(t, drop) })
			})
		}
	}
}

func sharedClaims(t *testing.T, drop string) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	ext := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }
	svcs := map[string]*v1.Service{"a": svc("a", "10.96.0.1", ext), "b": svc("b", "10.96.0.2", ext)}
	slices := map[string]*discovery.EndpointSlice{
		"a": slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1")),
		"b": slice("b", discovery.AddressTypeIPv4, readyEP("10.244.2.1"), readyEP("10.244.2.2")),
	}
	for _, name := range []string{"a", "b"} {
		p.OnServiceAdd(svcs[name])
		p.OnEndpointSliceAdd(slices[name])
		syncOK(t, p) // a claims first
	}
	keep := map[string]string{"a": "b", "b": "a"}[drop]
	p.OnServiceDelete(svcs[drop])
	p.OnEndpointSliceDelete(slices[drop])
	syncOK(t, p)
	checkObservedIsKernel(t, p, drop+" deleted")
	want := map[string]string{"a": "10.244.1.1:8080", "b": "10.244.2.1:8080 10.244.2.2:8080"}[keep]
	if got := destsAt(t, k, key("203.0.113.7", ipvs.TCP, 80)); got != want {
		t.Errorf("%s deleted: 203.0.113.7:80 serves %q, want %s's %q", drop, got, keep, want)
	}
	if !boundOn(t, k, "203.0.113.7") {
		t.Errorf("%s deleted: 203.0.113.7 unbound while %s uses it", drop, keep)
	}
	passSyncPeriod(p)
	syncOK(t, p)
	if got := destsAt(t, k, key("203.0.113.7", ipvs.TCP, 80)); got != want {
		t.Errorf("after a full sync: 203.0.113.7:80 serves %q, want %q", got, want)
	}
	p.OnServiceDelete(svcs[keep])
	p.OnEndpointSliceDelete(slices[keep])
	syncOK(t, p)
	checkObservedIsKernel(t, p, "both deleted")
	if got := ipvsDump(k); got != "" {
		t.Errorf("both deleted: IPVS still holds\n%s", got)
	}
	if boundOn(t, k, "203.0.113.7") {
		t.Error("both deleted: 203.0.113.7 still bound")
	}
}

// destsAt lists the real servers of a virtual server, sorted ("" when none
// or no virtual server).
func destsAt(t *testing.T, k *kernel, sk ipvs.ServiceKey) string {
	t.Helper()
	vss, err := k.ipvs.List()
	must(t, err)
	var out []string
	for _, vs := range vss {
		if vs.ServiceKey == sk {
			for _, d := range vs.Destinations {
				out = append(out, netip.AddrPortFrom(d.Address, d.Port).String())
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func boundOn(t *testing.T, k *kernel, addr string) bool {
	t.Helper()
	addrs, err := k.netdev.Addresses(DummyDevice)
	must(t, err)
	return slices.Contains(addrs, netip.MustParseAddr(addr))
}

// With every key in one chain: virtual servers of both families, every
// protocol and several ports, two claims of some keys, removed from the
// head, the middle and the tail in turn (and one twice): each key is found,
// listed once and gone exactly when its last claim goes.
func TestWantedIndexOneChainOfManyKeys(t *testing.T) {
	withHashMask(0, func() {
		ix := newWantedIndex(maphash.MakeSeed(), 0)
		var all []*wantedService
		for _, a := range []string{"10.96.0.1", "::ffff:10.96.0.1", "fd00::1", "10.96.0.2"} {
			for _, proto := range []ipvs.Protocol{ipvs.TCP, ipvs.UDP, ipvs.SCTP} {
				for _, port := range []uint16{80, 0x5000} { // 80 and 20480: one byte apart
					ws := &wantedService{service: ipvs.Service{ServiceKey: key(a, proto, port)}}
					ix.add(ws)
					all = append(all, ws)
					if port == 80 && proto == ipvs.TCP { // a second claim of the key
						ws2 := &wantedService{service: ipvs.Service{ServiceKey: ws.service.ServiceKey}}
						ix.add(ws2)
						all = append(all, ws2)
					}
				}
			}
		}
		if len(ix.heads) != 1 {
			t.Fatalf("%d chains, want one", len(ix.heads))
		}
		claims := func(k ipvs.ServiceKey) (n int) {
			for _, ws := range all {
				if ws != nil && ws.service.ServiceKey == k {
					n++
				}
			}
			return n
		}
		check := func(when string) {
			t.Helper()
			var want []string
			for _, ws := range all {
				if ws == nil {
					continue
				}
				k := ws.service.ServiceKey
				s := fmt.Sprintf("%s:%d/%s", k.Address, k.Port, k.Protocol)
				if !slices.Contains(want, s) {
					want = append(want, s)
				}
				var first *wantedService
				for _, x := range all {
					if x != nil && x.service.ServiceKey == k {
						first = x
						break
					}
				}
				if got := ix.first(k); got != first {
					t.Fatalf("%s: first(%s) = %p, want %p", when, s, got, first)
				}
				n := 0
				ix.each(k, func(x *wantedService) {
					if x.service.ServiceKey != k {
						t.Fatalf("%s: each(%s) gave %v", when, s, x.service.ServiceKey)
					}
					n++
				})
				if n != claims(k) {
					t.Fatalf("%s: each(%s) gave %d claims, want %d", when, s, n, claims(k))
				}
			}
			slices.Sort(want)
			if got := indexKeys(&ix); got != strings.Join(want, " ") {
				t.Fatalf("%s: keys %q\nwant %q", when, got, strings.Join(want, " "))
			}
		}
		check("all added")
		for _, i := range []int{0, len(all) - 1, len(all) / 2, 1, 3, 2} {
			ws := all[i]
			all[i] = nil
			k := ws.service.ServiceKey
			if last := ix.remove(ws); last != (claims(k) == 0) {
				t.Fatalf("removing claim %d of %v said last=%t with %d claims left", i, k, last, claims(k))
			}
			check(fmt.Sprintf("claim %d removed", i))
			if last := ix.remove(ws); last != (claims(k) == 0) { // twice: nothing changes
				t.Fatalf("removing claim %d again said last=%t with %d claims left", i, last, claims(k))
			}
			check(fmt.Sprintf("claim %d removed twice", i))
		}
		for i, ws := range all {
			if ws != nil {
				all[i] = nil
				ix.remove(ws)
			}
		}
		if len(ix.heads) != 0 || indexKeys(&ix) != "" {
			t.Fatalf("emptied index keeps %d chains", len(ix.heads))
		}
	})
}

// With every Service in one chain: ports of Services that differ by
// namespace, by name and by one character, added, replaced, renamed and
// removed (one twice): each Service's ports are its own, in order.
func TestPortIndexOneChainOfManyServices(t *testing.T) {
	withHashMask(0, func() {
		ix := newPortIndex(maphash.MakeSeed(), 0)
		nns := []types.NamespacedName{{Namespace: "ns", Name: "a"}, {Namespace: "ns2", Name: "a"}, {Namespace: "ns", Name: "b"}, {Namespace: "n", Name: "s/a"}}
		name := func(nn types.NamespacedName, port string) proxy.ServicePortName {
			return proxy.ServicePortName{NamespacedName: nn, Port: port, Protocol: v1.ProtocolTCP}
		}
		want := map[types.NamespacedName][]string{}
		check := func(when string) {
			t.Helper()
			for _, nn := range nns {
				var got []string
				ix.each(nn, func(c *contribution) { got = append(got, c.name.Port) })
				if !slices.Equal(got, want[nn]) {
					t.Fatalf("%s: ports of %s %q, want %q", when, nn, got, want[nn])
				}
				for _, p := range want[nn] {
					if c := ix.get(name(nn, p)); c == nil || c.name != name(nn, p) {
						t.Fatalf("%s: get(%s %s) = %v", when, nn, p, c)
					}
				}
			}
		}
		for _, p := range []string{"http", "dns", "https"} {
			for _, nn := range nns {
				ix.replace(name(nn, p), &contribution{name: name(nn, p)})
				want[nn] = append(want[nn], p)
			}
		}
		check("added")
		nn := nns[1]
		if old := ix.replace(name(nn, "dns"), &contribution{name: name(nn, "dns")}); old == nil || old.name != name(nn, "dns") {
			t.Fatalf("replacing %s dns returned %v", nn, old)
		}
		check("replaced")
		ix.replace(name(nn, "dns"), nil) // renamed: the old name goes, the new comes
		ix.replace(name(nn, "dns2"), &contribution{name: name(nn, "dns2")})
		want[nn] = []string{"http", "https", "dns2"}
		check("renamed")
		for _, nn := range []types.NamespacedName{nns[0], nns[3]} {
			if old := ix.replace(name(nn, "http"), nil); old == nil {
				t.Fatalf("removing %s http found nothing", nn)
			}
			if old := ix.replace(name(nn, "http"), nil); old != nil {
				t.Fatalf("removing %s http twice returned %v", nn, old.name)
			}
			want[nn] = want[nn][1:]
		}
		check("removed")
		for _, nn := range nns {
			for _, p := range want[nn] {
				ix.replace(name(nn, p), nil)
			}
			want[nn] = nil
		}
		check("emptied")
		if len(ix.heads) != 0 {
			t.Fatalf("emptied index keeps %d chains", len(ix.heads))
		}
	})
}
