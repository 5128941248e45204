package ipvs

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// A differential scenario: endpoint states and attributes, both families,
// traffic policies, affinity, policies per Service, node ports, external
// and load-balancer IPs, hairpin, type and port changes, an endpoint's IP
// changing, draining with connections, a restart, a lost node. Each step's
// whole kernel (IPVS, sets, addresses, rules, conntrack) must be what main
// (93571d0, before the memory work of issue 16) made of it: the golden file
// is its run. SCENARIO_DUMP=file writes the run to file instead.
func TestScenarioKernelStateMatchesTheGolden(t *testing.T) {
	for _, gate := range []bool{true, false} {
		t.Run(fmt.Sprintf("gate %v", gate), func(t *testing.T) { runScenario(t, gate) })
	}
}

func runScenario(t *testing.T, gate bool) {
	var dump strings.Builder
	k := newKernel(t)
	cfg4, cfg6 := testConfig(v1.IPv4Protocol), testConfig(v1.IPv6Protocol)
	cfg4.ImmediateTermination, cfg6.ImmediateTermination = gate, gate
	p4, p6 := newTestProxier(t, k, cfg4), newTestProxier(t, k, cfg6)
	both := func(f func(p *Proxier)) { f(p4); f(p6) }
	step := func(name string, full bool) {
		t.Helper()
		fillConntrack(t, k)
		if full {
			passSyncPeriod(p4)
			passSyncPeriod(p6)
		}
		syncOK(t, p4)
		syncOK(t, p6)
		fmt.Fprintf(&dump, "### %s\n%s\niptables4:\n%s\niptables6:\n%s\nconntrack:\n%s\n", name, kernelDump(k),
			k.ipt4.Dump(), k.ipt6.Dump(), k.conntrack.Dump())
	}
	s := scenarioObjects()
	both(func(p *Proxier) {
		p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-a"})
		for _, svc := range s.services {
			p.OnServiceAdd(svc)
		}
		for _, sl := range s.slices {
			p.OnEndpointSliceAdd(sl)
		}
	})
	step("initial", false)
	step("periodic full", true)

	// Changes: an endpoint's IP, states, type, ports, hints.
	must(t, k.ipvs.SetConnections(ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.1.4"), Protocol: ipvs.TCP, Port: 80},
		ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.4.1"), Port: 8080}, 2, 1))
	must(t, k.ipvs.SetConnections(ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.1.1"), Protocol: ipvs.TCP, Port: 80},
		ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.1.1"), Port: 8080}, 3, 0))
	both(func(p *Proxier) {
		p.OnEndpointSliceUpdate(s.slices["s1"], s.slice("s1", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP,
			readyEP("10.244.1.11"), epServingTerminating("10.244.1.2"), epNotServing("10.244.1.3"), epNotReady("10.244.1.4"), localEP("10.244.1.5")))
		p.OnEndpointSliceUpdate(s.slices["s2"], s.slice("s2", discovery.AddressTypeIPv6, 65535, v1.ProtocolTCP,
			readyEP("fd00:244::1"), epServingTerminating("fd00:244::2"), epServingTerminating("fd00:244::3")))
		p.OnServiceUpdate(s.services["s3"], svc("s3", "10.96.1.3"))
		p.OnServiceUpdate(s.services["s4"], svcWith("s4", "10.96.1.4", func(sv *v1.Service) {
			sv.Annotations = map[string]string{TerminationPolicyAnnotation: PolicyGraceful}
			sv.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			sv.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
			sv.Spec.ExternalIPs = []string{"203.0.113.4"}
			sv.Spec.Ports = append(sv.Spec.Ports, v1.ServicePort{Name: "https", Protocol: v1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(8443)})
		}))
		p.OnEndpointSliceUpdate(s.slices["s4"], twoPorts(s.slice("s4", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP, readyEP("10.244.4.2"))))
		p.OnEndpointSliceUpdate(s.slices["s6"], s.slice("s6", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP,
			readyEP("10.244.6.1"), readyEP("10.244.6.2")))
		p.OnEndpointSliceUpdate(s.slices["s7"], s.slice("s7", discovery.AddressTypeIPv4, 40000, v1.ProtocolUDP,
			epNotReady("10.244.7.1"), readyEP("10.244.7.2")))
	})
	step("changes", false)
	step("changes, full", true)

	// A restart: new proxiers over the kernel the old ones programmed.
	p4, p6 = newTestProxier(t, k, cfg4), newTestProxier(t, k, cfg6)
	both(func(p *Proxier) {
		p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-a"})
		for _, name := range sets.List(sets.KeySet(s.services)) {
			if name == "s3" || name == "s4" {
				continue
			}
			p.OnServiceAdd(s.services[name])
		}
		p.OnServiceAdd(svc("s3", "10.96.1.3"))
	})
	step("restart, services only", false)
	both(func(p *Proxier) {
		p.OnEndpointSliceAdd(s.slice("s1", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP,
			readyEP("10.244.1.11"), epServingTerminating("10.244.1.2"), epNotServing("10.244.1.3"), epNotReady("10.244.1.4"), localEP("10.244.1.5")))
		p.OnEndpointSliceAdd(s.slices["s3"])
		p.OnEndpointSliceAdd(s.slices["s5"])
	})
	step("restart, some slices", false)
	_ = k.ipvs.SetConnections(ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.1.4"), Protocol: ipvs.TCP, Port: 80},
		ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.4.1"), Port: 8080}, 0, 0)
	both(func(p *Proxier) {
		p.OnNodesNotReady(sets.New("node-b"))
		p.OnEndpointSliceAdd(s.slice("s2", discovery.AddressTypeIPv6, 65535, v1.ProtocolTCP,
			readyEP("fd00:244::1"), epNotReady("fd00:244::3")))
		p.OnEndpointSliceAdd(s.slices["s6"])
		p.OnEndpointSliceAdd(s.slices["s7"])
	})
	step("node-b lost, other slices", false)
	step("full", true)
	name := "testdata/scenario_gate_on.golden"
	if !gate {
		name = "testdata/scenario_gate_off.golden"
	}
	if out := os.Getenv("SCENARIO_DUMP"); out != "" {
		must(t, os.WriteFile(fmt.Sprintf("%s.gate-%v", out, gate), []byte(dump.String()), 0o644))
		return
	}
	golden, err := os.ReadFile(name)
	must(t, err)
	if got := dump.String(); got != string(golden) {
		t.Errorf("the scenario's kernel differs from the golden (%s); SCENARIO_DUMP=file writes this run", name)
	}
}

// fillConntrack gives every real server of every virtual server one flow,
// so that the dump shows which flows a sync flushed.
func fillConntrack(t *testing.T, k *kernel) {
	t.Helper()
	vss, err := k.ipvs.List()
	must(t, err)
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			client := "10.0.0.1"
			if vs.Address.Is6() {
				client = "fd00:1::1"
			}
			k.conntrack.Add(conntrack.Entry{Protocol: protoNumber(vs.Protocol), OrigSrc: netip.MustParseAddr(client), OrigSrcPort: 40000,
				OrigDst: vs.Address, OrigDstPort: vs.Port, ReplySrc: d.Address, ReplySrcPort: d.Port})
		}
	}
}

func epServingTerminating(ip string) ep {
	return ep{ip: ip, node: "node-b", ready: false, serving: true, terminating: true}
}
func epNotServing(ip string) ep { return ep{ip: ip, node: "node-b", terminating: true} }
func epNotReady(ip string) ep   { return ep{ip: ip, node: "node-b"} }

func svcWith(name, clusterIP string, mutate func(*v1.Service)) *v1.Service {
	return svc(name, clusterIP, mutate)
}

// twoPorts adds port "https" 8443 to a slice.
func twoPorts(s *discovery.EndpointSlice) *discovery.EndpointSlice {
	s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptr.To("https"), Port: ptr.To[int32](8443), Protocol: ptr.To(v1.ProtocolTCP)})
	return s
}

type scenario struct {
	services map[string]*v1.Service
	slices   map[string]*discovery.EndpointSlice
}

// slice is the EndpointSlice of a Service with one port "http".
func (*scenario) slice(name string, family discovery.AddressType, port int32, proto v1.Protocol, eps ...ep) *discovery.EndpointSlice {
	s := slice(name, family, eps...)
	s.Ports[0].Port, s.Ports[0].Protocol = ptr.To(port), ptr.To(proto)
	return s
}

func scenarioObjects() *scenario {
	s := &scenario{services: map[string]*v1.Service{}, slices: map[string]*discovery.EndpointSlice{}}
	add := func(sv *v1.Service, sl *discovery.EndpointSlice) {
		s.services[sv.Name], s.slices[sv.Name] = sv, sl
	}
	// Every endpoint state, a local one (hairpin).
	add(svc("s1", "10.96.1.1"), s.slice("s1", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP,
		readyEP("10.244.1.1"), epServingTerminating("10.244.1.2"), epNotServing("10.244.1.3"), epNotReady("10.244.1.4"), localEP("10.244.1.5")))
	// IPv6, ports above 32767, a local endpoint, internal traffic policy Local.
	add(svc("s2", "fd00:96::2", func(sv *v1.Service) {
		sv.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
		sv.Spec.Ports[0].Port = 40000
		sv.Spec.Ports[0].TargetPort = intstr.FromInt32(65535)
		sv.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	}), s.slice("s2", discovery.AddressTypeIPv6, 65535, v1.ProtocolTCP,
		readyEP("fd00:244::1"), localEP("fd00:244::2"), epServingTerminating("fd00:244::3")))
	// NodePort, external traffic policy Local, local and remote endpoints.
	add(svc("s3", "10.96.1.3", func(sv *v1.Service) {
		sv.Spec.Type = v1.ServiceTypeNodePort
		sv.Spec.Ports[0].NodePort = 30100
		sv.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		sv.Spec.HealthCheckNodePort = 31100
	}), s.slice("s3", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP, readyEP("10.244.3.1"), localEP("10.244.3.2")))
	// Load balancer, external IP, affinity, graceful.
	add(svc("s4", "10.96.1.4", func(sv *v1.Service) {
		sv.Annotations = map[string]string{TerminationPolicyAnnotation: PolicyGraceful}
		sv.Spec.Type = v1.ServiceTypeLoadBalancer
		sv.Spec.Ports[0].NodePort = 30104
		sv.Spec.ExternalIPs = []string{"203.0.113.4"}
		sv.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		sv.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](3600)}}
		sv.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.4"}}
	}), s.slice("s4", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP, readyEP("10.244.4.1"), readyEP("10.244.4.2")))
	// Only terminating endpoints, one of them local, external policy Local.
	add(svc("s5", "10.96.1.5", func(sv *v1.Service) {
		sv.Spec.Type = v1.ServiceTypeNodePort
		sv.Spec.Ports[0].NodePort = 30105
		sv.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		sv.Spec.HealthCheckNodePort = 31105
	}), s.slice("s5", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP, epServingTerminating("10.244.5.1"),
		ep{ip: "10.244.5.2", node: testNode, serving: true, terminating: true}))
	// Topology hints.
	hinted := func(ip, zone string) ep { e := readyEP(ip); e.zone = zone; return e }
	add(svc("s6", "10.96.1.6", func(sv *v1.Service) { sv.Spec.TrafficDistribution = ptr.To(v1.ServiceTrafficDistributionPreferClose) }), s.slice("s6", discovery.AddressTypeIPv4, 8080, v1.ProtocolTCP,
		hinted("10.244.6.1", "zone-a"), hinted("10.244.6.2", "zone-b")))
	// UDP, port 0 for a service port is invalid; ports at the top of the range.
	add(svc("s7", "10.96.1.7", withProto(v1.ProtocolUDP), func(sv *v1.Service) {
		sv.Spec.Ports[0].Port = 65535
		sv.Spec.Ports[0].TargetPort = intstr.FromInt32(40000)
		sv.Spec.Type = v1.ServiceTypeNodePort
		sv.Spec.Ports[0].NodePort = 32767
		sv.Annotations = map[string]string{TerminationPolicyAnnotation: PolicyImmediate}
	}), s.slice("s7", discovery.AddressTypeIPv4, 40000, v1.ProtocolUDP, readyEP("10.244.7.1"), readyEP("10.244.7.2")))
	// SCTP node port, dual-stack Service.
	add(svc("s8", "10.96.1.8", withProto(v1.ProtocolSCTP), func(sv *v1.Service) {
		sv.Spec.Type = v1.ServiceTypeNodePort
		sv.Spec.Ports[0].NodePort = 30108
		sv.Spec.ClusterIPs = []string{"10.96.1.8", "fd00:96::8"}
		sv.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	}), s.slice("s8", discovery.AddressTypeIPv4, 8080, v1.ProtocolSCTP, readyEP("10.244.8.1")))
	return s
}
