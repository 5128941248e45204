package parity

import (
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

const (
	v4  = v1.IPv4Protocol
	v6  = v1.IPv6Protocol
	me  = nodeName
	you = otherNode
)

var ip4 = []string{"10.96.0.1"}

// corners are the hand-written cases; the ones marked strict pin down a
// deliberate difference of docs/parity.md exactly.
func corners() []corner {
	return append(append(lifecycleCorners(), serviceCorners()...), deliberateCorners()...)
}

// lifecycleCorners follow endpoints through rolling updates and restarts.
func lifecycleCorners() []corner {
	s := svc("web", ip4)
	u := svc("dns", ip4, protocol(v1.ProtocolUDP))
	return []corner{{
		name: "rolling update: ready, terminating and serving, stopped, gone",
		steps: []change{
			do("two ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one terminates, still serving", put(slice("web-1", s, v4, ready("10.244.0.1", you), terminating("10.244.0.2", you)))),
			do("it stops serving", put(slice("web-1", s, v4, ready("10.244.0.1", you), stopped("10.244.0.2", you)))),
			do("it is gone", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
			do("a new pod", put(slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.3", you)))),
		},
	}, {
		name: "a draining real server comes back to weight 1",
		steps: []change{
			do("two ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one is removed", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
			do("it is back", put(slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
		},
	}, {
		name: "drained real servers are deleted at once",
		idle: true,
		steps: []change{
			do("two ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one is removed", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "UDP real servers are deleted at once",
		steps: []change{
			do("two ready pods", put(u, slice("dns-1", u, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one is removed", put(slice("dns-1", u, v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "only terminating endpoints: the serving ones are used",
		steps: []change{
			do("all terminating, one serving", put(s, slice("web-1", s, v4, terminating("10.244.0.1", you), stopped("10.244.0.2", you)))),
			do("a ready one appears", put(slice("web-1", s, v4, terminating("10.244.0.1", you), stopped("10.244.0.2", you), ready("10.244.0.3", you)))),
		},
	}, {
		name: "annotation overrides the gate both ways",
		steps: []change{
			do("graceful and immediate services", put(
				svc("g", ip4, policy(ourproxier.PolicyGraceful)), slice("g-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)),
				svc("i", []string{"10.96.0.2"}, policy(ourproxier.PolicyImmediate)), slice("i-1", svc("i", ip4), v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one pod leaves both", put(slice("g-1", svc("g", ip4), v4, ready("10.244.0.1", you)), slice("i-1", svc("i", ip4), v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "restart keeps what is current",
		steps: []change{
			do("a service", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			{what: "restart", restart: &restart{}},
			do("one pod leaves", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "restart with another scheduler updates every virtual server",
		steps: []change{
			do("a service", put(s, slice("web-1", s, v4, ready("10.244.0.1", you)))),
			{what: "restart with mh", restart: &restart{scheduler: "mh"}},
		},
	}}
}

// serviceCorners cover Service types, policies and addresses.
func serviceCorners() []corner {
	lb := svc("lb", []string{"10.96.0.1", "fd00:96::1"}, loadBalancer(30001, "198.51.100.1", "2001:db8:b::1"), externalLocal(30002))
	return []corner{{
		name: "externalTrafficPolicy Local: local endpoints, else all of them",
		steps: []change{
			do("remote pods only", put(lb, slice("lb-4", lb, v4, ready("10.244.0.1", you)), slice("lb-6", lb, v6, ready("fd00:244::1", you)))),
			do("a local pod", put(slice("lb-4", lb, v4, ready("10.244.0.1", you), ready("10.244.0.2", me)))),
			do("the local pod terminates", put(slice("lb-4", lb, v4, ready("10.244.0.1", you), terminating("10.244.0.2", me)))),
		},
	}, {
		name: "internalTrafficPolicy Local",
		steps: []change{
			do("remote and local pods", put(svc("in", ip4, internalLocal), slice("in-1", svc("in", ip4), v4, ready("10.244.0.1", you), ready("10.244.0.2", me)))),
			do("local pod gone", put(slice("in-1", svc("in", ip4), v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "topology hints follow the node's zone",
		steps: []change{
			do("hinted pods, node in zone-a", func(c *cluster) {
				s := svc("topo", ip4)
				put(s, slice("topo-1", s, v4, ready("10.244.0.1", you).inZone("zone-a"), ready("10.244.0.2", you).inZone("zone-b")))(c)
				c.labels = map[string]string{zoneLabel: "zone-a"}
			}),
			do("node moves to zone-b", labels(map[string]string{zoneLabel: "zone-b"})),
			do("node loses its zone", labels(nil)),
		},
	}, {
		name: "external IPs: bound unless on the node, Local policy set",
		steps: []change{
			do("external IPs", put(svc("ext", ip4, externalIPs("203.0.113.1", "192.168.0.10"), func(s *v1.Service) {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			}), slice("ext-1", svc("ext", ip4), v4, ready("10.244.0.1", me)))),
			do("one removed", put(svc("ext", ip4, externalIPs("192.168.0.10")))),
		},
	}, {
		name: "load balancer source ranges with and without the node",
		steps: []change{
			do("ranges without the node", put(svc("fw", ip4, loadBalancer(30003, "198.51.100.1"), sourceRanges("203.0.113.0/24")))),
			do("ranges with the node", put(svc("fw", ip4, loadBalancer(30003, "198.51.100.1"), sourceRanges("203.0.113.0/24", "192.168.0.0/24")))),
			do("no ranges", put(svc("fw", ip4, loadBalancer(30003, "198.51.100.1")))),
		},
	}, {
		name: "load balancer IPs in Proxy mode are not programmed",
		steps: []change{
			do("one VIP, one Proxy", put(svc("px", ip4, loadBalancer(30004, "198.51.100.1", "198.51.100.2"), func(s *v1.Service) {
				s.Status.LoadBalancer.Ingress[1].IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
			}))),
		},
	}, {
		name: "load balancer without node ports, Local",
		steps: []change{
			do("no node ports", put(svc("nonp", ip4, loadBalancer(0, "198.51.100.1"), externalLocal(30005), func(s *v1.Service) {
				s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
			}))),
		},
	}, {
		name: "SCTP node port on every node address",
		env:  func(e *environment) { e.links[1].addrs = prefixes("192.168.1.10/24", "fd00:1::10/64") },
		steps: []change{
			do("SCTP node port", put(svc("sctp", ip4, protocol(v1.ProtocolSCTP), nodePort(30006), externalLocal(0)))),
		},
	}, {
		name: "nodePortAddresses selects addresses per family",
		env: func(e *environment) {
			e.links[1].addrs = prefixes("192.168.1.10/24", "fd00:1::10/64")
			e.nodePortAddresses = []string{"192.168.1.0/24", "fd00::/64"}
		},
		steps: []change{
			do("dual-stack node port", put(svc("np", []string{"10.96.0.1", "fd00:96::1"}, nodePort(30007)))),
		},
	}, {
		name: "session affinity and its timeout",
		steps: []change{
			do("ClientIP 10800s", put(svc("sticky", ip4, affinity(10800), nodePort(30008)))),
			do("timeout 60s", put(svc("sticky", ip4, affinity(60), nodePort(30008)))),
			do("no affinity", put(svc("sticky", ip4, nodePort(30008)))),
		},
	}, {
		name: "port protocol change moves the virtual server",
		steps: []change{
			do("TCP", put(svc("pp", ip4), slice("pp-1", svc("pp", ip4), v4, ready("10.244.0.1", you)))),
			do("UDP", put(svc("pp", ip4, protocol(v1.ProtocolUDP)), slice("pp-1", svc("pp", ip4, protocol(v1.ProtocolUDP)), v4, ready("10.244.0.1", you)))),
		},
	}, {
		name: "ExternalName and headless Services are ignored",
		steps: []change{
			do("both", put(svc("name", []string{"None"}, func(s *v1.Service) {
				s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIPs, s.Spec.ClusterIP = v1.ServiceTypeExternalName, "example.com", nil, ""
			}), svc("headless", []string{"None"}), slice("headless-1", svc("headless", ip4), v4, ready("10.244.0.1", me)))),
		},
	}, {
		name: "excluded CIDRs: foreign and deleted virtual servers stay",
		env: func(e *environment) {
			e.excludeCIDRs = []string{"172.16.0.0/16", "10.96.0.0/30"}
			e.foreignServices = []foreignService{
				{proto: v1.ProtocolTCP, addr: mustAddr("172.16.0.5"), port: 80, dests: []foreignDest{{mustAddrPort("10.250.0.1:8080"), 1}}},
				{proto: v1.ProtocolTCP, addr: mustAddr("172.17.0.5"), port: 80},
			}
			e.foreignBound = []netipAddr{mustAddr("172.17.0.5")}
		},
		steps: []change{
			do("a service in the excluded range", put(svc("ex", ip4), slice("ex-1", svc("ex", ip4), v4, ready("10.244.0.1", you)))),
			do("deleted", drop("ex", "ex-1")),
		},
	}, {
		name: "dual-stack Service with slices of both families and an FQDN one",
		steps: []change{
			do("both families", put(svc("ds", []string{"fd00:96::1", "10.96.0.1"}), slice("ds-4", svc("ds", ip4), v4, ready("10.244.0.1", me)),
				slice("ds-6", svc("ds", ip4), v6, ready("fd00:244::1", you)), func() *discovery.EndpointSlice {
					s := slice("ds-f", svc("ds", ip4), v4, ready("10.244.0.9", you))
					s.AddressType = discovery.AddressTypeFQDN
					s.Endpoints[0].Addresses = []string{"pod.example.com"}
					return s
				}())),
			do("v6 slice gone", drop("ds-6")),
		},
	}}
}

// deliberateCorners pin down the deliberate differences of docs/parity.md.
func deliberateCorners() []corner {
	s := svc("web", ip4)
	lbLocal := svc("lb", ip4, nodePort(30020), externalLocal(30021))
	topo := svc("topo", []string{"10.96.0.3"})
	return []corner{{
		name:   "deliberate: gate on deletes real servers of endpoints going away, and only those",
		strict: true,
		steps: []change{
			do("four ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you), ready("10.244.0.3", you), ready("10.244.0.4", you)))),
			// a readiness flap on a Ready node: weight 0 on both sides
			do("one is not ready", put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you), ready("10.244.0.3", you), ready("10.244.0.4", you)))),
			do("one terminates, still serving", put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you), terminating("10.244.0.3", you), ready("10.244.0.4", you)))),
			do("it stops serving", put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you), stopped("10.244.0.3", you), ready("10.244.0.4", you)))),
			do("a ready one is gone", put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you), stopped("10.244.0.3", you)))),
			do("the not-ready one is gone", put(slice("web-1", s, v4, ready("10.244.0.1", you), stopped("10.244.0.3", you)))),
		},
		want: map[at][]string{
			{true, 3}: {"- vs TCP 10.96.0.1:80 to 10.244.0.3:8000 weight=0"},
			{true, 4}: {"- vs TCP 10.96.0.1:80 to 10.244.0.3:8000 weight=0", "- vs TCP 10.96.0.1:80 to 10.244.0.4:8000 weight=0"},
			{true, 5}: {"- vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=0", "- vs TCP 10.96.0.1:80 to 10.244.0.3:8000 weight=0",
				"- vs TCP 10.96.0.1:80 to 10.244.0.4:8000 weight=0"},
		},
	}, {
		// Their pods keep serving: under the gate too, weight 0 until idle.
		name:   "deliberate: gate on retires gracefully what traffic policies, topology and affinity leave out",
		strict: true,
		steps: []change{
			do("a remote pod, a Local node port, hinted pods in zone-a", func(c *cluster) {
				put(lbLocal, slice("lb-1", lbLocal, v4, ready("10.244.0.1", you)),
					topo, slice("topo-1", topo, v4, ready("10.244.1.1", you).inZone("zone-a"), ready("10.244.1.2", you).inZone("zone-a")))(c)
				c.labels = map[string]string{zoneLabel: "zone-a"}
			}),
			do("a local pod: the node port leaves the remote one", put(slice("lb-1", lbLocal, v4, ready("10.244.0.1", you), ready("10.244.0.5", me)))),
			do("internalTrafficPolicy Local", put(svc("lb", ip4, nodePort(30020), externalLocal(30021), internalLocal))),
			do("session affinity", put(svc("lb", ip4, nodePort(30020), externalLocal(30021), internalLocal, affinity(60)))),
			do("a pod hinted to zone-b", put(slice("topo-1", topo, v4, ready("10.244.1.1", you).inZone("zone-a"), ready("10.244.1.2", you).inZone("zone-b")))),
		},
	}, {
		name:   "deliberate: a restart keeps weight-0 leftovers of live pods; gate on deletes those of vanished ones",
		strict: true,
		steps: []change{
			do("three ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you), ready("10.244.0.3", you)))),
			do("two are not ready: weight 0", put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you), notReady("10.244.0.3", you)))),
			{what: "restart; one of them is gone meanwhile", apply: put(slice("web-1", s, v4, ready("10.244.0.1", you), notReady("10.244.0.2", you))),
				restart: &restart{}},
		},
		// gate off: upstream's, both leftovers kept until idle
		want: map[at][]string{{true, 2}: {"- vs TCP 10.96.0.1:80 to 10.244.0.3:8000 weight=0"}},
	}, {
		name:   "deliberate: gate on deletes real servers of endpoints that stop serving",
		strict: true,
		steps: []change{
			do("two ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			// still serving while it terminates: weight 0 on both sides
			do("one terminates", put(slice("web-1", s, v4, ready("10.244.0.1", you), terminating("10.244.0.2", you)))),
			do("and stops serving", put(slice("web-1", s, v4, ready("10.244.0.1", you), stopped("10.244.0.2", you)))),
		},
		want: map[at][]string{{true, 2}: {"- vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=0"}},
	}, {
		name:   "deliberate: health check port listed without node port addresses",
		strict: true,
		env:    func(e *environment) { e.nodePortAddresses = []string{"192.168.1.0/24"} },
		steps: []change{
			do("Local load balancer", put(svc("hc", ip4, loadBalancer(30010, "198.51.100.1"), externalLocal(30011)))),
		},
		want: map[at][]string{
			{false, 0}: {"+ set KUBE-HEALTH-CHECK-NODE-PORT has 30011"},
			{true, 0}:  {"+ set KUBE-HEALTH-CHECK-NODE-PORT has 30011"},
		},
	}, {
		name:   "deliberate: a real server re-added to a re-created virtual server is retired",
		strict: true,
		steps: []change{
			do("two ready pods", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("one leaves: weight 0, draining", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
			do("the Service is deleted", drop("web")),
			do("and created again, the pod back", put(s, slice("web-1", s, v4, ready("10.244.0.1", you), ready("10.244.0.2", you)))),
			do("the pod leaves again", put(slice("web-1", s, v4, ready("10.244.0.1", you)))),
		},
		want: map[at][]string{
			// upstream: still weight 1, its graceful list kept the real
			// server of the deleted virtual server and skips it now
			{false, 4}: {"- vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=1", "+ vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=0"},
			{true, 1}:  {"- vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=0"},
			{true, 4}:  {"- vs TCP 10.96.0.1:80 to 10.244.0.2:8000 weight=1"},
		},
	}, {
		name:   "deliberate: node ports only on node addresses, not on kube-ipvs0's",
		strict: true,
		env:    func(e *environment) { e.nodePortAddresses = []string{"10.96.0.0/16", "192.168.0.0/24"} },
		steps: []change{
			do("a node port", put(svc("np", ip4, nodePort(30012)), slice("np-1", svc("np", ip4), v4, ready("10.244.0.1", you)))),
			do("another service", put(svc("other", []string{"10.96.0.2"}))),
		},
		want: map[at][]string{
			// upstream: from its second sync on, a node port on the
			// cluster IP it bound on kube-ipvs0 in the first
			{false, 1}: {"- vs TCP 10.96.0.1:30012 scheduler=rr flags=0x0 timeout=0", "- vs TCP 10.96.0.1:30012 to 10.244.0.1:8000 weight=1"},
			{true, 1}:  {"- vs TCP 10.96.0.1:30012 scheduler=rr flags=0x0 timeout=0", "- vs TCP 10.96.0.1:30012 to 10.244.0.1:8000 weight=1"},
		},
	}, {
		name:   "deliberate: a Service port numbered 0 is skipped",
		strict: true,
		steps: []change{
			do("port 0", put(svc("zero", ip4, func(s *v1.Service) { s.Spec.Ports[0].Port = 0 }), slice("zero-1", svc("zero", ip4), v4, ready("10.244.0.1", you)))),
		},
		// the API server rejects port 0; ours skips the port (and says so in an event)
		want: map[at][]string{{false, 0}: portZero, {true, 0}: portZero},
	}, {
		name:   "deliberate: a loopback external IP is not bound",
		strict: true,
		steps: []change{
			do("external IP 127.0.0.1", put(svc("lo", ip4, externalIPs("127.0.0.1")), slice("lo-1", svc("lo", ip4), v4, ready("10.244.0.1", you)))),
			do("deleted", drop("lo", "lo-1")),
		},
		// the API server rejects loopback external IPs; upstream binds it on
		// kube-ipvs0 and, never unbinding loopback addresses, leaves it there
		want: map[at][]string{{false, 0}: loopbackBound, {true, 0}: loopbackBound,
			{false, 1}: {"- bound 127.0.0.1"}, {true, 1}: {"- bound 127.0.0.1"}},
	}}
}

var (
	portZero = []string{"- bound 10.96.0.1", "- set KUBE-CLUSTER-IP has 10.96.0.1,tcp:0", "- set KUBE-IPVS-IPS has 10.96.0.1",
		"- vs TCP 10.96.0.1:0 scheduler=rr flags=0x0 timeout=0", "- vs TCP 10.96.0.1:0 to 10.244.0.1:8000 weight=1"}
	loopbackBound = []string{"- bound 127.0.0.1", "- set KUBE-IPVS-IPS has 127.0.0.1"}
)

// do is a change of the API state.
func do(what string, apply func(*cluster)) change { return change{what: what, apply: apply} }
