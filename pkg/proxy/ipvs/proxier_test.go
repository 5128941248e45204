package ipvs

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

// setMembers lists a set's members in ipset syntax, sorted.
func setMembers(t *testing.T, k *kernel, name string) []string {
	t.Helper()
	sets, err := k.ipset.List(func(n string) bool { return n == name })
	must(t, err)
	for _, s := range sets {
		if s.Name == name {
			var out []string
			for _, e := range s.Entries {
				out = append(out, e.String())
			}
			slices.Sort(out)
			return out
		}
	}
	t.Fatalf("set %s does not exist", name)
	return nil
}

func boundAddrs(t *testing.T, k *kernel) []string {
	t.Helper()
	addrs, err := k.netdev.Addresses(DummyDevice)
	must(t, err)
	var out []string
	for _, a := range addrs {
		if a.IsLinkLocalUnicast() {
			continue // the kernel's own fe80:: address on the dummy device
		}
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestClusterIPAllProtocols(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("tcp", "10.96.0.1"))
	p.OnServiceAdd(svc("udp", "10.96.0.2", withProto(v1.ProtocolUDP)))
	p.OnServiceAdd(svc("sctp", "10.96.0.3", withProto(v1.ProtocolSCTP)))
	p.OnEndpointSliceAdd(slice("tcp", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("10.244.1.2")))
	udp := slice("udp", discovery.AddressTypeIPv4, readyEP("10.244.1.3"))
	udp.Ports[0].Protocol = ptr.To(v1.ProtocolUDP)
	p.OnEndpointSliceAdd(udp)
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		UDP 10.96.0.2:80 rr flags=0x2 timeout=0
		  -> 10.244.1.3:8080 weight=1 active=0 inactive=0
		SCTP 10.96.0.3:80 rr flags=0x2 timeout=0`)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1", "10.96.0.2", "10.96.0.3"}) {
		t.Errorf("bound = %v", got)
	}
	if got := setMembers(t, k, "KUBE-CLUSTER-IP"); !slices.Equal(got, []string{"10.96.0.1,tcp:80", "10.96.0.2,udp:80", "10.96.0.3,sctp:80"}) {
		t.Errorf("KUBE-CLUSTER-IP = %v", got)
	}
	if got := setMembers(t, k, "KUBE-IPVS-IPS"); len(got) != 3 {
		t.Errorf("KUBE-IPVS-IPS = %v", got)
	}
}

func TestServiceRemovalUnbindsOnlyUnusedAddresses(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	ext := func(s *v1.Service) { s.Spec.ExternalIPs = []string{"203.0.113.7"} }
	a := svc("a", "10.96.0.1", ext)
	b := svc("b", "10.96.0.2", ext, func(s *v1.Service) { s.Spec.Ports[0].Port = 81 })
	p.OnServiceAdd(a)
	p.OnServiceAdd(b)
	syncOK(t, p)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1", "10.96.0.2", "203.0.113.7"}) {
		t.Fatalf("bound = %v", got)
	}
	p.OnServiceDelete(a)
	syncOK(t, p)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.2", "203.0.113.7"}) {
		t.Errorf("after deleting a, bound = %v; the shared external IP must stay", got)
	}
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.2:81 rr flags=0x2 timeout=0
		TCP 203.0.113.7:81 rr flags=0x2 timeout=0`)
}

func TestNodePortOnSelectedAddresses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cidrs []string
		want  string
	}{
		{"all node addresses", nil, `
			TCP 10.96.0.1:80 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
			TCP 192.168.0.10:30080 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
			TCP 192.168.1.10:30080 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=1 active=0 inactive=0`},
		{"one CIDR", []string{"192.168.1.0/24", "fd00::/64"}, `
			TCP 10.96.0.1:80 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
			TCP 192.168.1.10:30080 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=1 active=0 inactive=0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			must(t, k.netdev.AddDevice("eth1", netip.MustParseAddr("192.168.1.10")))
			cfg := testConfig(v1.IPv4Protocol)
			cfg.NodePortAddresses = tc.cidrs
			p := newTestProxier(t, k, cfg)
			p.OnServiceAdd(svc("np", "10.96.0.1", func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
			}))
			p.OnEndpointSliceAdd(slice("np", discovery.AddressTypeIPv4, readyEP("10.244.1.1")))
			syncOK(t, p)
			wantDump(t, "ipvs", ipvsDump(k), tc.want)
			if got := setMembers(t, k, "KUBE-NODE-PORT-TCP"); !slices.Equal(got, []string{"30080"}) {
				t.Errorf("KUBE-NODE-PORT-TCP = %v", got)
			}
			if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1"}) {
				t.Errorf("node addresses must not be bound on %s: %v", DummyDevice, got)
			}
		})
	}
}

func TestSCTPNodePortUsesHashSet(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("np", "10.96.0.1", withProto(v1.ProtocolSCTP), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30081
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 31000
	}))
	syncOK(t, p)
	if got := setMembers(t, k, "KUBE-NODE-PORT-SCTP-HASH"); !slices.Equal(got, []string{"192.168.0.10,sctp:30081"}) {
		t.Errorf("KUBE-NODE-PORT-SCTP-HASH = %v", got)
	}
	if got := setMembers(t, k, "KUBE-NODE-PORT-LOCAL-SCTP-HASH"); !slices.Equal(got, []string{"192.168.0.10,sctp:30081"}) {
		t.Errorf("KUBE-NODE-PORT-LOCAL-SCTP-HASH = %v", got)
	}
	if got := setMembers(t, k, "KUBE-HEALTH-CHECK-NODE-PORT"); !slices.Equal(got, []string{"31000"}) {
		t.Errorf("KUBE-HEALTH-CHECK-NODE-PORT = %v", got)
	}
}

func TestExternalIPBoundUnlessOnNode(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("ext", "10.96.0.1", func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{"203.0.113.7", "192.168.0.10", "2001:db8::1"}
	}))
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		TCP 192.168.0.10:80 rr flags=0x2 timeout=0
		TCP 203.0.113.7:80 rr flags=0x2 timeout=0`)
	if got := boundAddrs(t, k); !slices.Equal(got, []string{"10.96.0.1", "203.0.113.7"}) {
		t.Errorf("bound = %v (a node address must not be bound)", got)
	}
	if got := setMembers(t, k, "KUBE-EXTERNAL-IP"); !slices.Equal(got, []string{"192.168.0.10,tcp:80", "203.0.113.7,tcp:80"}) {
		t.Errorf("KUBE-EXTERNAL-IP = %v", got)
	}
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	lb := func(ranges ...string) func(*v1.Service) {
		return func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = ranges
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.5"}}
		}
	}
	p.OnServiceAdd(svc("lb", "10.96.0.1", lb("203.0.113.0/24")))
	p.OnServiceAdd(svc("lb-node", "10.96.0.2", lb("192.168.0.0/16"), func(s *v1.Service) {
		s.Status.LoadBalancer.Ingress[0].IP = "198.51.100.6"
	}))
	syncOK(t, p)
	for set, want := range map[string][]string{
		"KUBE-LOAD-BALANCER":             {"198.51.100.5,tcp:80", "198.51.100.6,tcp:80"},
		"KUBE-LOAD-BALANCER-FW":          {"198.51.100.5,tcp:80", "198.51.100.6,tcp:80"},
		"KUBE-LOAD-BALANCER-SOURCE-CIDR": {"198.51.100.5,tcp:80,203.0.113.0/24", "198.51.100.6,tcp:80,192.168.0.0/16"},
		"KUBE-LOAD-BALANCER-SOURCE-IP":   {"198.51.100.6,tcp:80,198.51.100.6"},
	} {
		if got := setMembers(t, k, set); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", set, got, want)
		}
	}
	filter := k.ipt4.Dump()
	for _, rule := range []string{
		"-A KUBE-PROXY-FIREWALL -m comment --comment \"Kubernetes service load balancer ip + port for load balancer with sourceRange\" -m set --match-set KUBE-LOAD-BALANCER-FW dst,dst -j KUBE-SOURCE-RANGES-FIREWALL",
		"-A KUBE-SOURCE-RANGES-FIREWALL -j DROP",
		// The node is outside the first service's ranges: it must not reach it.
		"-A KUBE-IPVS-OUT-FILTER -s 198.51.100.5 -m ipvs --vaddr 198.51.100.5 --vproto tcp --vport 80 -j DROP",
		"-A INPUT -m comment --comment \"kube-proxy firewall rules\" -j KUBE-PROXY-FIREWALL",
	} {
		if !strings.Contains(filter, rule) {
			t.Errorf("missing rule %q in\n%s", rule, filter)
		}
	}
	if strings.Contains(filter, "--vaddr 198.51.100.6") {
		t.Errorf("the node is inside lb-node's ranges and must keep access:\n%s", filter)
	}
}

func TestSessionAffinitySchedulerAndTimeouts(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.Scheduler = "mh"
	cfg.TCPTimeout, cfg.TCPFinTimeout, cfg.UDPTimeout = 3600e9, 30e9, 60e9
	p := newTestProxier(t, k, cfg)
	p.OnServiceAdd(svc("sticky", "10.96.0.1", func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	}))
	// ClientIP without its config (the API server never sends it) must not crash.
	p.OnServiceAdd(svc("sticky-default", "10.96.0.2", func(s *v1.Service) { s.Spec.SessionAffinity = v1.ServiceAffinityClientIP }))
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 mh flags=0x13 timeout=600 netmask=0xffffffff
		TCP 10.96.0.2:80 mh flags=0x13 timeout=10800 netmask=0xffffffff
		timeouts tcp=1h0m0s tcpfin=30s udp=1m0s`)
}

func TestServiceOptionChangeUpdatesVirtualServer(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	s := svc("s", "10.96.0.1")
	p.OnServiceAdd(s)
	syncOK(t, p)
	s2 := s.DeepCopy()
	s2.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	s2.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	p.OnServiceUpdate(s, s2)
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `TCP 10.96.0.1:80 rr flags=0x3 timeout=60 netmask=0xffffffff`)
	if n := k.ipvs.Calls["UpdateService"]; n != 1 {
		t.Errorf("UpdateService calls = %d, want 1", n)
	}
}

func TestUnknownVirtualServersDeletedExceptExcludedCIDRs(t *testing.T) {
	k := newKernel(t)
	for _, addr := range []string{"10.96.9.9", "172.16.0.1", "fd00::1"} {
		a := netip.MustParseAddr(addr)
		mask := uint32(0xffffffff)
		if a.Is6() {
			mask = 128
		}
		must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: ipvs.ServiceKey{Address: a, Protocol: ipvs.TCP, Port: 53}, Scheduler: "rr", Netmask: mask}))
	}
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ExcludeCIDRs = []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}
	p := newTestProxier(t, k, cfg)
	syncOK(t, p)
	// Unknown IPv4 service gone; excluded one and the other family's kept.
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 172.16.0.1:53 rr flags=0x2 timeout=0
		TCP [fd00::1]:53 rr flags=0x2 timeout=0`)
}

func TestTrafficPolicyLocal(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("local", "10.96.0.1", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.ExternalIPs = []string{"203.0.113.7"}
	}))
	p.OnServiceAdd(svc("internal", "10.96.0.2", func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}))
	p.OnEndpointSliceAdd(slice("local", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), localEP("10.244.0.5")))
	p.OnEndpointSliceAdd(slice("internal", discovery.AddressTypeIPv4, readyEP("10.244.1.2"), localEP("10.244.0.6")))
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.2:80 rr flags=0x2 timeout=0
		  -> 10.244.0.6:8080 weight=1 active=0 inactive=0
		TCP 192.168.0.10:30080 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0
		TCP 203.0.113.7:80 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0`)
	if got := setMembers(t, k, "KUBE-NODE-PORT-LOCAL-TCP"); !slices.Equal(got, []string{"30080"}) {
		t.Errorf("KUBE-NODE-PORT-LOCAL-TCP = %v", got)
	}
	if got := setMembers(t, k, "KUBE-EXTERNAL-IP-LOCAL"); !slices.Equal(got, []string{"203.0.113.7,tcp:80"}) {
		t.Errorf("KUBE-EXTERNAL-IP-LOCAL = %v", got)
	}
	if got := setMembers(t, k, "KUBE-LOOP-BACK"); !slices.Equal(got, []string{"10.244.0.5,tcp:8080,10.244.0.5", "10.244.0.6,tcp:8080,10.244.0.6"}) {
		t.Errorf("KUBE-LOOP-BACK = %v", got)
	}
}

func TestLocalPolicyWithoutLocalEndpointsLikeUpstream(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("internal", "10.96.0.1", func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}))
	p.OnServiceAdd(svc("external", "10.96.0.2", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}))
	p.OnEndpointSliceAdd(slice("internal", discovery.AddressTypeIPv4, readyEP("10.244.1.1")))
	p.OnEndpointSliceAdd(slice("external", discovery.AddressTypeIPv4, readyEP("10.244.1.2")))
	syncOK(t, p)
	// internalTrafficPolicy Local with no local endpoint: no real server.
	// externalTrafficPolicy Local with none: upstream's IPVS proxier falls
	// back to the cluster-wide endpoints (kubernetes#97081); so do we.
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		TCP 10.96.0.2:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		TCP 192.168.0.10:30080 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
}

func TestTopologyHintsAndTerminatingFallback(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-a"})
	p.OnServiceAdd(svc("hinted", "10.96.0.1"))
	p.OnServiceAdd(svc("terminating", "10.96.0.2"))
	a, b := readyEP("10.244.1.1"), readyEP("10.244.2.1")
	a.zone, b.zone = "zone-a", "zone-b"
	p.OnEndpointSliceAdd(slice("hinted", discovery.AddressTypeIPv4, a, b))
	// No ready endpoint: upstream falls back to serving terminating ones.
	p.OnEndpointSliceAdd(slice("terminating", discovery.AddressTypeIPv4,
		ep{ip: "10.244.3.1", node: "node-b", serving: true, terminating: true},
		ep{ip: "10.244.3.2", node: "node-b", terminating: true}))
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=0 inactive=0
		TCP 10.96.0.2:80 rr flags=0x2 timeout=0
		  -> 10.244.3.1:8080 weight=1 active=0 inactive=0`)
}

func TestMasqueradeRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		rule string
	}{
		{"masqueradeAll", func(c *Config) { c.MasqueradeAll = true },
			`-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`},
		{"cluster CIDR", func(c *Config) { c.LocalDetector = proxyutil.NewDetectLocalByCIDR("10.244.0.0/16") },
			`-m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`},
		{"no detection", func(c *Config) {},
			`-m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			tc.cfg(&cfg)
			p := newTestProxier(t, k, cfg)
			p.OnServiceAdd(svc("s", "10.96.0.1"))
			p.OnEndpointSliceAdd(slice("s", discovery.AddressTypeIPv4, localEP("10.244.0.5")))
			syncOK(t, p)
			rules := k.ipt4.Dump()
			for _, want := range []string{
				tc.rule,
				"-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000",
				"-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN",
				"-m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE",
				"-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT",
				"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
			} {
				if !strings.Contains(rules, want) {
					t.Errorf("missing %q in\n%s", want, rules)
				}
			}
		})
	}
}

func TestSysctlsByKernelVersion(t *testing.T) {
	for _, tc := range []struct {
		kernel    string
		strictARP bool
		want      map[string]int
	}{
		{"6.1.0-56-amd64", false, map[string]int{sysctlConnReuseMode: 1, sysctlArpIgnore: 0}},
		{"4.19.0-20-amd64", true, map[string]int{sysctlConnReuseMode: 0, sysctlArpIgnore: 1, sysctlArpAnnounce: 2}},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.StrictARP = tc.strictARP
			deps := k.deps(v1.IPv4Protocol)
			deps.KernelVersion = tc.kernel
			if _, err := NewProxier(t.Context(), cfg, deps); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{sysctlVSConntrack: 1, sysctlExpireNodestConn: 1, sysctlExpireQuiescent: 1, sysctlIPForward: 1}
			for n, v := range tc.want {
				want[n] = v
			}
			for name, v := range want {
				if got, _ := k.sysctl.Get(name); got != v {
					t.Errorf("%s = %d, want %d", name, got, v)
				}
			}
		})
	}
}

func TestExpireNodestConnRestoredOnFullSync(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	syncOK(t, p)
	must(t, k.sysctl.Set(sysctlExpireNodestConn, 0))
	p.lastFullSync = p.lastFullSync.Add(-p.cfg.SyncPeriod)
	syncOK(t, p)
	if got, _ := k.sysctl.Get(sysctlExpireNodestConn); got != 1 {
		t.Errorf("expire_nodest_conn = %d after a full sync, want 1", got)
	}
}

func TestMissingIPVSSysctlsFailClearly(t *testing.T) {
	k := newKernel(t)
	deps := k.deps(v1.IPv4Protocol)
	// ip_vs not loaded: its sysctls do not exist.
	deps.Sysctl = sysctl.NewFake(map[string]int{sysctlIPForward: 1})
	_, err := NewProxier(t.Context(), testConfig(v1.IPv4Protocol), deps)
	if err == nil || !strings.Contains(err.Error(), sysctlVSConntrack) {
		t.Fatalf("want an error naming %s, got %v", sysctlVSConntrack, err)
	}
}
