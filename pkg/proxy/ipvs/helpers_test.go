package ipvs

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-base/metrics"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

const testNode = "node-a"

// kernel is one node's fake kernel, shared by the proxiers of both families.
type kernel struct {
	ipvs      *ipvs.Fake
	ipset     *ipset.Fake
	ipt4      *iptables.Fake
	ipt6      *iptables.Fake
	netdev    *netdev.Fake
	conntrack *conntrack.Fake
	sysctl    *sysctl.Fake
}

func newKernel(t *testing.T) *kernel {
	t.Helper()
	k := &kernel{
		ipvs: ipvs.NewFake(), ipset: ipset.NewFake(), ipt4: iptables.NewFake(false), ipt6: iptables.NewFake(true),
		netdev: netdev.NewFake(), conntrack: conntrack.NewFake(),
		sysctl: sysctl.NewFake(map[string]int{
			sysctlVSConntrack: 0, sysctlConnReuseMode: 1, sysctlExpireNodestConn: 0, sysctlExpireQuiescent: 0,
			sysctlIPForward: 0, sysctlArpIgnore: 0, sysctlArpAnnounce: 0,
		}),
	}
	must(t, k.netdev.AddDevice("lo", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")))
	must(t, k.netdev.AddDevice("eth0", netip.MustParseAddr("192.168.0.10"), netip.MustParseAddr("fd00::10"),
		netip.MustParseAddr("fe80::1")))
	return k
}

func (k *kernel) deps(family v1.IPFamily) Deps {
	ipt := k.ipt4
	if family == v1.IPv6Protocol {
		ipt = k.ipt6
	}
	return Deps{IPVS: k.ipvs, IPSet: k.ipset, IPTables: ipt, NetDev: k.netdev, Conntrack: k.conntrack,
		Sysctl: k.sysctl, KernelVersion: "6.1.0-56-amd64"}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testConfig(family v1.IPFamily) Config {
	cfg := Config{
		IPFamily: family, NodeName: testNode, NodeIP: netip.MustParseAddr("192.168.0.10"),
		SyncPeriod: 30 * time.Second, MinSyncPeriod: 0, MasqueradeBit: 14,
	}
	if family == v1.IPv6Protocol {
		cfg.NodeIP = netip.MustParseAddr("fd00::10")
	}
	return cfg
}

// newTestProxier builds a proxier on the fakes, marked synced so that
// syncProxyRules runs.
func newTestProxier(t *testing.T, k *kernel, cfg Config) *Proxier {
	t.Helper()
	deps := k.deps(cfg.IPFamily)
	deps.Metrics = NewMetrics()
	deps.Metrics.Register(metrics.NewKubeRegistry()) // unregistered metrics do not count
	p, err := NewProxier(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("NewProxier: %v", err)
	}
	p.mu.Lock()
	p.servicesSynced, p.endpointSlicesSynced = true, true
	p.mu.Unlock()
	p.initialized.Store(true)
	p.afterFunc = func(time.Duration, func()) {} // hand-driven: the test decides what runs
	return p
}

// fakeClock is Deps.Now and the proxier's timers, driven by the test.
type fakeClock struct {
	now     time.Time
	pending []fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) afterFunc(d time.Duration, f func()) {
	c.pending = append(c.pending, fakeTimer{at: c.now.Add(d), f: f})
}

// fireNext moves the clock to the earliest pending timer and runs it; false
// when none is pending.
func (c *fakeClock) fireNext() bool {
	if len(c.pending) == 0 {
		return false
	}
	next := 0
	for i, tm := range c.pending {
		if tm.at.Before(c.pending[next].at) {
			next = i
		}
	}
	tm := c.pending[next]
	c.pending = append(c.pending[:next], c.pending[next+1:]...)
	if tm.at.After(c.now) {
		c.now = tm.at
	}
	tm.f()
	return true
}

// newClockedProxier is newTestProxier on a fake clock.
func newClockedProxier(t *testing.T, k *kernel, cfg Config) (*Proxier, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	p := newTestProxier(t, k, cfg)
	p.deps.Now, p.afterFunc = clock.Now, clock.afterFunc
	return p, clock
}

func syncOK(t *testing.T, p *Proxier) {
	t.Helper()
	if err := p.syncProxyRules(); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// svc makes a Service with one TCP port 80 named "http"; mutate adjusts it.
func svc(name, clusterIP string, mutate ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, m := range mutate {
		m(s)
	}
	return s
}

// ep describes one endpoint of a slice.
type ep struct {
	ip          string
	node        string
	ready       bool
	serving     bool
	terminating bool
	zone        string
}

func readyEP(ip string) ep { return ep{ip: ip, node: "node-b", ready: true, serving: true} }
func localEP(ip string) ep { return ep{ip: ip, node: testNode, ready: true, serving: true} }

// slice makes the EndpointSlice of service name with port 8080 "http".
func slice(name string, family discovery.AddressType, eps ...ep) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-abc",
			Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: family,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, e := range eps {
		de := discovery.Endpoint{
			Addresses: []string{e.ip},
			Conditions: discovery.EndpointConditions{
				Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)},
			NodeName: ptr.To(e.node),
		}
		if e.zone != "" {
			de.Zone = ptr.To(e.zone)
			de.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: e.zone}}}
		}
		s.Endpoints = append(s.Endpoints, de)
	}
	return s
}

func withProto(p v1.Protocol) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.Ports[0].Protocol = p }
}

func withAnnotation(k, v string) func(*v1.Service) {
	return func(s *v1.Service) { s.Annotations = map[string]string{k: v} }
}

// ipvsLines returns the IPVS dump as trimmed lines for compact comparisons.
func ipvsDump(k *kernel) string { return strings.TrimSpace(k.ipvs.Dump()) }

func nsName(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "ns", Name: name}
}

func wantDump(t *testing.T, what, got, want string) {
	t.Helper()
	got, want = strings.TrimSpace(got), strings.TrimSpace(dedent(want))
	if got != want {
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s", what, got, want)
	}
}

// dedent strips the common leading tabs of a raw-string expectation.
func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t")
	}
	return strings.Join(lines, "\n")
}
