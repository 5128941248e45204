package parity

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

// corner is a hand-written case: a node and a sequence of changes.
type corner struct {
	name string
	// env adjusts the default node (dual-stack, eth0 only, defaults).
	env   func(*environment)
	idle  bool // real servers have no connections (else one each)
	steps []change
	// strict compares without the deliberate rules: want then lists every
	// difference (a case that pins a documented difference down).
	strict bool
	want   map[at][]string
}

// change is one step of a corner case.
type change struct {
	what    string
	apply   func(c *cluster)
	restart *restart
}

func (k *corner) scenario() *scenario {
	env := environment{
		families:  []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol},
		links:     []link{{name: "eth0", addrs: []netip.Prefix{netip.MustParsePrefix("192.168.0.10/24"), netip.MustParsePrefix("fd00::10/64")}}, {name: "eth1"}},
		scheduler: "rr",
	}
	if k.env != nil {
		k.env(&env)
	}
	conns := 1
	if k.idle {
		conns = 0
	}
	sc := &scenario{name: k.name, env: env, conns: &conns}
	c := newCluster()
	for _, ch := range k.steps {
		c = c.clone()
		if ch.apply != nil {
			ch.apply(c)
		}
		sc.steps = append(sc.steps, step{what: ch.what, cluster: c, restart: ch.restart})
	}
	return sc
}

// svc is a Service "name" with TCP port p0 80 -> 8000 on the cluster IPs.
func svc(name string, clusterIPs []string, mutate ...func(*v1.Service)) *v1.Service {
	s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	s.Spec.Type = v1.ServiceTypeClusterIP
	s.Spec.ClusterIPs, s.Spec.ClusterIP = clusterIPs, clusterIPs[0]
	for _, ip := range clusterIPs {
		s.Spec.IPFamilies = append(s.Spec.IPFamilies, familyOf(ip))
	}
	s.Spec.Ports = []v1.ServicePort{{Name: "p0", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8000)}}
	for _, m := range mutate {
		m(s)
	}
	return s
}

func familyOf(ip string) v1.IPFamily {
	if strings.Contains(ip, ":") {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func nodePort(np int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type, s.Spec.Ports[0].NodePort = v1.ServiceTypeNodePort, np
		if s.Spec.ExternalTrafficPolicy == "" {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		}
	}
}

func loadBalancer(np int32, ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		nodePort(np)(s)
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

func externalLocal(hc int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = v1.ServiceExternalTrafficPolicyLocal, hc
	}
}

func internalLocal(s *v1.Service) {
	s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
}

func protocol(p v1.Protocol) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.Ports[0].Protocol = p }
}

func affinity(seconds int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(seconds)}}
	}
}

func externalIPs(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.ExternalIPs = ips
		if s.Spec.ExternalTrafficPolicy == "" {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		}
	}
}

func sourceRanges(cidrs ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = cidrs }
}

func policy(p string) func(*v1.Service) {
	return func(s *v1.Service) { s.Annotations = map[string]string{ourproxier.TerminationPolicyAnnotation: p} }
}

// ep is an endpoint of a slice.
type ep struct {
	ip, node             string
	ready, serving, term bool
	zone                 string
}

func ready(ip, node string) ep       { return ep{ip: ip, node: node, ready: true, serving: true} }
func terminating(ip, node string) ep { return ep{ip: ip, node: node, serving: true, term: true} }
func notReady(ip, node string) ep    { return ep{ip: ip, node: node} }
func stopped(ip, node string) ep     { return ep{ip: ip, node: node, term: true} }

func (e ep) inZone(z string) ep { e.zone = z; return e }

// slice is the EndpointSlice "name" of a Service's port p0 (8000), with the
// Service's protocol.
func slice(name string, s *v1.Service, family v1.IPFamily, eps ...ep) *discovery.EndpointSlice {
	es := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{discovery.LabelServiceName: s.Name}},
		AddressType: discovery.AddressType(family),
		Ports: []discovery.EndpointPort{{Name: ptr.To("p0"), Port: ptr.To[int32](8000),
			Protocol: ptr.To(s.Spec.Ports[0].Protocol)}},
	}
	for _, e := range eps {
		de := discovery.Endpoint{Addresses: []string{e.ip}, NodeName: ptr.To(e.node),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.term)}}
		if e.zone != "" {
			de.Zone = ptr.To(e.zone)
			de.Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: e.zone}}}
		}
		es.Endpoints = append(es.Endpoints, de)
	}
	return es
}

// put adds or replaces Services and slices.
func put(objs ...any) func(*cluster) {
	return func(c *cluster) {
		for _, o := range objs {
			switch o := o.(type) {
			case *v1.Service:
				c.services[o.Name] = o
			case *discovery.EndpointSlice:
				c.slices[o.Name] = o
			}
		}
	}
}

// drop deletes Services and slices by name.
func drop(names ...string) func(*cluster) {
	return func(c *cluster) {
		for _, n := range names {
			delete(c.services, n)
			delete(c.slices, n)
		}
	}
}

func labels(l map[string]string) func(*cluster) {
	return func(c *cluster) { c.labels = l }
}

// TestParityCorners runs the hand-written cases.
func TestParityCorners(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	quietLogs()
	for _, k := range corners() {
		t.Run(k.name, func(t *testing.T) {
			var rules []deliberate
			if !k.strict {
				rules = deliberateDifferences()
			}
			runScenario(t, k.scenario(), rules, k.want)
		})
	}
}
