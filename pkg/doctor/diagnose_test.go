package doctor

import (
	"net/netip"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// node returns a snapshot of a 6.1 node with the given table, dummy
// addresses and cluster (nil: no cluster data).
func node(vss []ipvs.VirtualServer, bound []netip.Addr, cluster *Cluster) Snapshot {
	return Snapshot{KernelRelease: "6.1.0-56-amd64", Sysctls: healthySysctls(), VirtualServers: vss,
		DummyDevice: "kube-ipvs0", DummyPresent: true, DummyAddresses: bound, Cluster: cluster}
}

func cluster(services []v1.Service, slices ...discovery.EndpointSlice) *Cluster {
	return &Cluster{Services: services, EndpointSlices: slices}
}

func TestDiagnoseFindings(t *testing.T) {
	web := []v1.Service{service("web", "10.96.0.1")}
	nodePort := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}
	tests := []struct {
		name string
		snap Snapshot
		opts Options
		want string
	}{{
		name: "healthy",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 1, 3, 1))},
			addrs("10.96.0.1"), cluster(web, slice("web", 8080, ready("10.244.1.5")))),
		want: ``,
	}, {
		name: "weight 0, endpoint gone",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80",
			dest("10.244.1.5:8080", 1, 0, 0), dest("10.244.1.6:8080", 0, 2, 7))},
			addrs("10.96.0.1"), cluster(web, slice("web", 8080, ready("10.244.1.5")))),
		want: `problem stale-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=2/7 fix`,
	}, {
		name: "weight 0, endpoint terminating and not serving",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 0, 4))},
			addrs("10.96.0.1"), cluster(web, slice("web", 8080, gone("10.244.1.6")))),
		want: `problem stale-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=0/4 fix`,
	}, {
		name: "weight 0, endpoint terminating but serving: draining",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 1, 0))},
			addrs("10.96.0.1"), cluster(web, slice("web", 8080, terminating("10.244.1.6")))),
		want: `info draining-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=1/0`,
	}, {
		name: "endpoint on another port is not this real server",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 0, 0))},
			addrs("10.96.0.1"), cluster(web, slice("web", 9090, ready("10.244.1.6")))),
		want: `problem stale-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=0/0 fix`,
	}, {
		name: "weight 1, endpoint gone: proxier behind",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 1, 0, 0))},
			addrs("10.96.0.1"), cluster(web)),
		want: `problem real-server-without-endpoint TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=0/0 fix`,
	}, {
		name: "no cluster data: weight 0 is a warning without repair",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80",
			dest("10.244.1.5:8080", 1, 0, 0), dest("10.244.1.6:8080", 0, 5, 0))}, addrs("10.96.0.1"), nil),
		want: `warning draining-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 conns=5/0`,
	}, {
		name: "no cluster data: address without virtual server",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80")}, addrs("10.96.0.1", "10.96.0.9", "fe80::1"), nil),
		want: `problem address-without-service 10.96.0.9 on kube-ipvs0`,
	}, {
		name: "virtual server and address without Service",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 1, 0, 0)),
			vserver("TCP 10.96.0.9:443", dest("10.244.1.7:8443", 0, 0, 0))},
			addrs("10.96.0.1", "10.96.0.9"), cluster(web, slice("web", 8080, ready("10.244.1.5")))),
		want: `
			problem address-without-service 10.96.0.9 on kube-ipvs0
			problem virtual-server-without-service TCP 10.96.0.9:443`,
	}, {
		name: "Service missing from IPVS and its address not bound",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 1, 0, 0))},
			addrs("10.96.0.1"), cluster(append(web, service("api", "10.96.0.2", func(s *v1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53})
			})), slice("web", 8080, ready("10.244.1.5")))),
		want: `
			problem service-address-not-bound 10.96.0.2 on kube-ipvs0 [ns/api:http]
			problem service-missing-from-ipvs TCP 10.96.0.2:80 [ns/api:http]
			problem service-missing-from-ipvs UDP 10.96.0.2:53 [ns/api:dns]`,
	}, {
		name: "dummy device missing",
		snap: func() Snapshot {
			s := node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80")}, nil, cluster(web))
			s.DummyPresent = false
			return s
		}(),
		want: `problem service-address-not-bound kube-ipvs0`,
	}, {
		name: "Services the proxier ignores are not missing",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80")}, addrs("10.96.0.1"), cluster([]v1.Service{
			service("web", "10.96.0.1"),
			service("headless", "None"),
			service("other-proxy", "10.96.0.3", func(s *v1.Service) {
				s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "x"}
			}),
			service("name", "", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeExternalName }),
			service("sixonly", "fd00:96::1"), // the node programs IPv4 only
		})),
		want: ``,
	}, {
		name: "node port, external IP and load-balancer IP virtual servers belong to their Service",
		snap: node([]ipvs.VirtualServer{
			vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 1, 0, 0)),
			vserver("TCP 192.168.0.10:30080", dest("10.244.1.5:8080", 1, 0, 0), dest("10.244.1.6:8080", 0, 0, 1)),
			vserver("TCP 203.0.113.5:80", dest("10.244.1.5:8080", 1, 0, 0)),
			vserver("TCP 198.51.100.7:80", dest("10.244.1.5:8080", 1, 0, 0)),
		}, addrs("10.96.0.1", "203.0.113.5", "198.51.100.7"),
			cluster([]v1.Service{service("web", "10.96.0.1", nodePort, func(s *v1.Service) {
				s.Spec.ExternalIPs = []string{"203.0.113.5"}
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}}
			})}, slice("web", 8080, ready("10.244.1.5")))),
		want: `problem stale-real-server TCP 192.168.0.10:30080 -> 10.244.1.6:8080 [ns/web:http] conns=0/1 fix`,
	}, {
		name: "proxy-mode load-balancer IP is not the node's",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80"), vserver("TCP 198.51.100.7:80")},
			addrs("10.96.0.1"), cluster([]v1.Service{service("web", "10.96.0.1", func(s *v1.Service) {
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7", IPMode: ptr.To(v1.LoadBalancerIPModeProxy)}}
			})})),
		want: `problem virtual-server-without-service TCP 198.51.100.7:80`,
	}, {
		name: "excluded ranges are someone else's",
		snap: node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80"), vserver("TCP 172.16.0.1:80", dest("10.0.0.1:80", 0, 0, 0))},
			addrs("10.96.0.1", "172.16.0.1"), cluster(web)),
		opts: Options{ExcludeCIDRs: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}},
		want: ``,
	}, {
		name: "stale UDP conntrack entries",
		snap: func() Snapshot {
			dns := []v1.Service{service("dns", "10.96.0.10", func(s *v1.Service) {
				s.Spec.Ports = []v1.ServicePort{{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53}}
			})}
			sl := slice("dns", 53, ready("10.244.1.5"), ready("10.244.1.8"))
			sl.Ports[0].Name, sl.Ports[0].Protocol = ptr.To("dns"), ptr.To(v1.ProtocolUDP)
			s := node([]ipvs.VirtualServer{vserver("UDP 10.96.0.10:53", dest("10.244.1.5:53", 1, 0, 0))},
				addrs("10.96.0.10"), cluster(dns, sl))
			s.UDPConntrack = []conntrack.Entry{
				udpEntry("10.244.2.1:40000", "10.96.0.10:53", "10.244.1.5:53"), // current real server
				udpEntry("10.244.2.1:40001", "10.96.0.10:53", "10.244.1.9:53"), // endpoint gone
				udpEntry("10.244.2.2:40001", "10.96.0.10:53", "10.244.1.9:53"),
				udpEntry("10.244.2.1:40002", "10.96.0.10:53", "10.244.1.8:53"), // serving, not yet programmed
				udpEntry("10.244.2.1:40003", "10.96.0.10:53", "10.96.0.10:53"), // not rewritten by IPVS
				udpEntry("10.244.2.1:40004", "10.96.0.11:53", "10.244.1.9:53"), // not a virtual server
			}
			return s
		}(),
		want: `problem stale-udp-conntrack UDP 10.96.0.10:53 -> 10.244.1.9:53 [ns/dns:dns] fix`,
	}, {
		name: "stale UDP conntrack entries without cluster data",
		snap: func() Snapshot {
			s := node([]ipvs.VirtualServer{vserver("UDP 10.96.0.10:53", dest("10.244.1.5:53", 1, 0, 0))},
				addrs("10.96.0.10"), nil)
			s.UDPConntrack = []conntrack.Entry{udpEntry("10.244.2.1:40002", "10.96.0.10:53", "10.244.1.8:53")}
			return s
		}(),
		want: `problem stale-udp-conntrack UDP 10.96.0.10:53 -> 10.244.1.8:53 fix`,
	}, {
		name: "IPv6 real servers",
		snap: node([]ipvs.VirtualServer{vserver("TCP [fd00:96::1]:80", dest("[fd00:244::5]:8080", 0, 0, 0))},
			addrs("fd00:96::1"), cluster([]v1.Service{service("web", "fd00:96::1")})),
		want: `problem stale-real-server TCP [fd00:96::1]:80 -> [fd00:244::5]:8080 [ns/web:http] conns=0/0 fix`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Diagnose(tc.snap, tc.opts)
			wantText(t, "findings", findingLines(r.Findings), tc.want)
		})
	}
}

func TestDiagnoseRepairs(t *testing.T) {
	snap := node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 0, 0))},
		addrs("10.96.0.1"), cluster([]v1.Service{service("web", "10.96.0.1")}))
	snap.UDPConntrack = nil
	r := Diagnose(snap, Options{})
	if len(r.Findings) != 1 {
		t.Fatalf("findings: %v", findingLines(r.Findings))
	}
	want := &Repair{
		DeleteRealServer: &RealServer{Service: serviceKey("TCP 10.96.0.1:80"), Destination: destKey("10.244.1.6:8080")},
		DeleteConntrack: []conntrack.Filter{{Protocol: conntrack.ProtoTCP, OrigDst: netip.MustParseAddr("10.96.0.1"),
			OrigDstPort: 80, ReplySrc: netip.MustParseAddr("10.244.1.6"), ReplySrcPort: 8080}},
	}
	if got := r.Findings[0].Repair; !reflect.DeepEqual(got, want) {
		t.Errorf("repair = %+v, want %+v", got, want)
	}
}

func TestDiagnoseFacts(t *testing.T) {
	snap := node([]ipvs.VirtualServer{vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 1, 0, 0),
		dest("10.244.1.6:8080", 0, 0, 0))}, addrs("10.96.0.1"), nil)
	snap.Gaps = []string{"UDP conntrack entries: EPERM"}
	r := Diagnose(snap, Options{})
	want := NodeFacts{KernelRelease: "6.1.0-56-amd64", Sysctls: healthySysctls(), VirtualServers: 1, RealServers: 2,
		WeightZero: 1, DummyDevice: "kube-ipvs0", DummyPresent: true, DummyAddresses: 1, Services: -1, EndpointSlices: -1}
	if !reflect.DeepEqual(r.Node, want) {
		t.Errorf("facts = %+v\nwant %+v", r.Node, want)
	}
	if !reflect.DeepEqual(r.Gaps, snap.Gaps) {
		t.Errorf("gaps = %v", r.Gaps)
	}
}

// TestDiagnoseIsPure: the same snapshot gives the same report, and the
// snapshot is not changed.
func TestDiagnoseIsPure(t *testing.T) {
	snap := node([]ipvs.VirtualServer{vserver("TCP 10.96.0.9:80", dest("10.244.1.6:8080", 0, 0, 0)),
		vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 0, 0))}, addrs("10.96.0.9", "10.96.0.1"),
		cluster([]v1.Service{service("web", "10.96.0.1")}))
	before := Diagnose(snap, Options{})
	copyBefore := node([]ipvs.VirtualServer{vserver("TCP 10.96.0.9:80", dest("10.244.1.6:8080", 0, 0, 0)),
		vserver("TCP 10.96.0.1:80", dest("10.244.1.6:8080", 0, 0, 0))}, addrs("10.96.0.9", "10.96.0.1"),
		cluster([]v1.Service{service("web", "10.96.0.1")}))
	if after := Diagnose(snap, Options{}); !reflect.DeepEqual(before, after) {
		t.Errorf("two diagnoses differ:\n%+v\n%+v", before, after)
	}
	if !reflect.DeepEqual(snap, copyBefore) {
		t.Errorf("Diagnose changed its snapshot")
	}
}
