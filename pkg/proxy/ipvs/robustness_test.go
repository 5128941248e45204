package ipvs

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

func TestDualStackProxiersShareTheKernel(t *testing.T) {
	k := newKernel(t)
	p4 := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p6 := newTestProxier(t, k, testConfig(v1.IPv6Protocol))
	ds := svc("ds", "10.96.0.1", func(s *v1.Service) {
		s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00:96::1"}
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	})
	s6 := slice("ds", discovery.AddressTypeIPv6, readyEP("fd00:244::1"))
	s6.Name = "ds-v6"
	for _, p := range []*Proxier{p4, p6} {
		p.OnServiceAdd(ds)
		p.OnEndpointSliceAdd(slice("ds", discovery.AddressTypeIPv4, readyEP("10.244.1.1")))
		p.OnEndpointSliceAdd(s6)
	}
	syncOK(t, p4)
	syncOK(t, p6)
	syncOK(t, p4) // neither family's sync may remove the other's state
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 192.168.0.10:30080 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP [fd00::10]:30080 rr flags=0x2 timeout=0
		  -> [fd00:244::1]:8080 weight=1 active=0 inactive=0
		TCP [fd00:96::1]:80 rr flags=0x2 timeout=0
		  -> [fd00:244::1]:8080 weight=1 active=0 inactive=0`)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1", "fd00:96::1"}) {
		t.Errorf("bound = %v", got)
	}
	if got := setMembers(t, k, "KUBE-6-CLUSTER-IP"); !slices.Equal(got, []string{"fd00:96::1,tcp:80"}) {
		t.Errorf("KUBE-6-CLUSTER-IP = %v", got)
	}
	if !strings.Contains(k.ipt6.Dump(), "-A KUBE-SERVICES -s ::1/128 -j RETURN") {
		t.Errorf("ip6tables lacks the IPv6 loopback rule:\n%s", k.ipt6.Dump())
	}
}

func TestBadObjectsAreSkippedOthersProgrammed(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("good", "10.96.0.1"))
	p.OnServiceAdd(svc("bad-proto", "10.96.0.2", withProto("ICMP")))
	p.OnServiceAdd(svc("bad-port", "10.96.0.3", func(s *v1.Service) { s.Spec.Ports[0].Port = 70000 }))
	p.OnServiceAdd(svc("bad-ip", "10.96.0.x"))
	p.OnServiceAdd(svc("multicast", "224.0.0.1"))
	p.OnServiceAdd(svc("bad-external", "10.96.0.4", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"0.0.0.0", "239.1.1.1"} }))
	p.OnEndpointSliceAdd(slice("good", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("not-an-ip"), readyEP("10.244.1.300"), readyEP("255.255.255.255")))
	badPort := slice("good", discovery.AddressTypeIPv4, readyEP("10.244.1.2"))
	badPort.Name = "good-badport"
	*badPort.Ports[0].Port = 0
	p.OnEndpointSliceAdd(badPort)
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.4:80 rr flags=0x2 timeout=0`)
}

func TestKernelErrorMidApplyKeepsTheRestAndConverges(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	for _, s := range []*v1.Service{svc("a", "10.96.0.1"), svc("b", "10.96.0.2"), svc("c", "10.96.0.3")} {
		p.OnServiceAdd(s)
		p.OnEndpointSliceAdd(slice(s.Name, discovery.AddressTypeIPv4, readyEP("10.244.1."+s.Spec.ClusterIP[len(s.Spec.ClusterIP)-1:])))
	}
	k.ipvs.Inject = func(op, object string) error {
		if op == "AddDestination" && strings.Contains(object, "10.96.0.2") {
			return syscall.ENOMEM
		}
		return nil
	}
	err := p.syncProxyRules()
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "10.96.0.2") {
		t.Fatalf("want an ENOMEM naming 10.96.0.2, got %v", err)
	}
	wantDump(t, "ipvs after the failure", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.2:80 rr flags=0x2 timeout=0
		TCP 10.96.0.3:80 rr flags=0x2 timeout=0
		  -> 10.244.1.3:8080 weight=1 active=0 inactive=0`)
	if !p.needFull {
		t.Error("a failed sync must make the next one full")
	}
	k.ipvs.Inject = nil
	syncOK(t, p)
	wantDump(t, "ipvs after the retry", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.2:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.3:80 rr flags=0x2 timeout=0
		  -> 10.244.1.3:8080 weight=1 active=0 inactive=0`)
}

func TestExternalTamperingRepairedNextSync(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	p.OnEndpointSliceAdd(slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1")))
	syncOK(t, p)
	want := ipvsDump(k)
	must(t, k.ipvs.Flush()) // ipvsadm -C
	must(t, k.netdev.DeleteAddress(DummyDevice, vip))
	passSyncPeriod(p) // the periodic full sync re-reads the kernel
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), want)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1"}) {
		t.Errorf("bound = %v", got)
	}
}

func TestNoSyncBeforeInformersSynced(t *testing.T) {
	k := newKernel(t)
	p, err := NewProxier(t.Context(), testConfig(v1.IPv4Protocol), k.deps(v1.IPv4Protocol))
	must(t, err)
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	p.OnServiceSynced()
	if d := ipvsDump(k); d != "" {
		t.Fatalf("synced before EndpointSlices arrived:\n%s", d)
	}
	p.OnEndpointSlicesSynced()
	if d := ipvsDump(k); !strings.Contains(d, "10.96.0.1:80") {
		t.Fatalf("no sync after both informers synced:\n%s", d)
	}
}

func TestCleanupRemovesEverythingWeCreated(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}))
	syncOK(t, p)
	must(t, CleanupLeftovers(t.Context(), k.deps(v1.IPv4Protocol)))
	if d := ipvsDump(k); d != "" {
		t.Errorf("IPVS left:\n%s", d)
	}
	if d := k.netdev.Dump(); strings.Contains(d, DummyDevice) {
		t.Errorf("dummy device left:\n%s", d)
	}
	if d := k.ipset.Dump(); d != "" {
		t.Errorf("ipsets left:\n%s", d)
	}
	if d := k.ipt4.Dump(); strings.Contains(d, "KUBE-") {
		t.Errorf("iptables left:\n%s", d)
	}
	// A second cleanup on a clean node succeeds.
	must(t, CleanupLeftovers(t.Context(), k.deps(v1.IPv4Protocol)))
}

// recordingHealthServer remembers what the proxier told the
// healthCheckNodePort servers.
type recordingHealthServer struct {
	services  map[types.NamespacedName]uint16
	endpoints map[types.NamespacedName]int
}

func (r *recordingHealthServer) SyncServices(s map[types.NamespacedName]uint16) error {
	r.services = s
	return nil
}

func (r *recordingHealthServer) SyncEndpoints(e map[types.NamespacedName]int) error {
	r.endpoints = e
	return nil
}

func TestHealthCheckNodePortServers(t *testing.T) {
	k := newKernel(t)
	hs := &recordingHealthServer{}
	deps := k.deps(v1.IPv4Protocol)
	deps.ServiceHealthServer = hs
	p, err := NewProxier(t.Context(), testConfig(v1.IPv4Protocol), deps)
	must(t, err)
	p.initialized.Store(true)
	p.OnServiceAdd(svc("lb", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 31000
	}))
	p.OnEndpointSliceAdd(slice("lb", discovery.AddressTypeIPv4, localEP("10.244.0.5"), readyEP("10.244.1.1")))
	syncOK(t, p)
	if got := hs.services[nsName("lb")]; got != 31000 {
		t.Errorf("health check port = %d, want 31000", got)
	}
	if got := hs.endpoints[nsName("lb")]; got != 1 {
		t.Errorf("local ready endpoints = %d, want 1", got)
	}
}

// passSyncPeriod makes the next sync the periodic full one.
func passSyncPeriod(p *Proxier) { p.lastFullSync = p.lastFullSync.Add(-p.cfg.SyncPeriod) }

func TestPartialSyncTouchesOnlyWhatChanged(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	var slices []*discovery.EndpointSlice
	for i := range 50 {
		name := fmt.Sprintf("s%d", i)
		p.OnServiceAdd(svc(name, fmt.Sprintf("10.96.0.%d", i+1)))
		slices = append(slices, slice(name, discovery.AddressTypeIPv4, readyEP(fmt.Sprintf("10.244.1.%d", i+1)), readyEP(fmt.Sprintf("10.244.2.%d", i+1))))
		p.OnEndpointSliceAdd(slices[i])
	}
	syncOK(t, p)
	key8 := ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.8"), Protocol: ipvs.TCP, Port: 80}
	must(t, k.ipvs.SetConnections(key8, ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.1.8"), Port: 8080}, 1, 0))
	clear(k.ipvs.Calls)
	clear(k.ipset.Calls)
	clear(k.netdev.Calls)
	gone := slices[7].DeepCopy()
	gone.Endpoints = gone.Endpoints[1:]
	p.OnEndpointSliceUpdate(slices[7], gone)
	syncOK(t, p)
	// The connected real server is parked at weight 0 after reading that
	// one service's real servers; no full read of the table, the sets or
	// the addresses.
	wantCalls := map[string]int{"Destinations": 1, "UpdateDestination": 1}
	if !maps.Equal(k.ipvs.Calls, wantCalls) || len(k.ipset.Calls) != 0 || k.netdev.Calls["Addresses"] != 0 {
		t.Errorf("partial sync calls: ipvs %v (want %v), ipset %v, netdev %v", k.ipvs.Calls, wantCalls, k.ipset.Calls, k.netdev.Calls)
	}
	if got := ipvsDump(k); !strings.Contains(got, "-> 10.244.1.8:8080 weight=0") {
		t.Errorf("want 10.244.1.8 at weight 0:\n%s", got)
	}
}

func TestEndpointSlicePortWithoutProtocolIsTCP(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("web", "10.96.0.1"))
	s := slice("web", discovery.AddressTypeIPv4, readyEP("10.244.1.1"))
	s.Ports[0].Protocol = nil // the API server fills it in; a malformed object must not crash us
	p.OnEndpointSliceAdd(s)
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0`)
}
