package ipvs

import (
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Under the immediate policy a real server is deleted at once only when its
// endpoint is going away: gone from every EndpointSlice, terminating and no
// longer serving, or not ready on a node that is not Ready. Every other
// reason to stop using an endpoint leaves its pod alive with healthy
// connections: its real server drains at weight 0 as upstream's does.

var localPod = netip.MustParseAddr("10.244.0.5")

// notReady are the conditions of a readiness flap, and of the pods of a
// lost node as the node-lifecycle controller marks them.
func notReady() discovery.EndpointConditions {
	return discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(false)}
}

// gateOnProxier is a proxier with the gate on and the default finish grace.
func gateOnProxier(t *testing.T, k *kernel) *Proxier {
	t.Helper()
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination, cfg.FinishGrace = true, DefaultFinishGrace
	return newTestProxier(t, k, cfg)
}

// connectOld gives the old pod 2 established and 3 closing connections on
// every virtual server that has it.
func connectOld(t *testing.T, k *kernel) {
	t.Helper()
	vss, err := k.ipvs.List()
	must(t, err)
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			if d.DestinationKey == oldDest {
				must(t, k.ipvs.SetConnections(vs.ServiceKey, oldDest, 2, 3))
			}
		}
	}
}

// updateSlice replaces a slice and syncs; it returns the new slice.
func updateSlice(t *testing.T, p *Proxier, cur *discovery.EndpointSlice, change func(*discovery.EndpointSlice)) *discovery.EndpointSlice {
	t.Helper()
	next := cur.DeepCopy()
	change(next)
	p.OnEndpointSliceUpdate(cur, next)
	syncOK(t, p)
	return next
}

func setConditions(i int, c discovery.EndpointConditions) func(*discovery.EndpointSlice) {
	return func(s *discovery.EndpointSlice) { s.Endpoints[i].Conditions = c }
}

func readyConditions() discovery.EndpointConditions {
	return discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)}
}

const oldParkedAndNew = `
	TCP 10.96.0.1:80 rr flags=0x2 timeout=0
	  -> 10.244.1.1:8080 weight=0 active=2 inactive=3
	  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`

func wantDeletedImmediately(t *testing.T, p *Proxier, n float64) {
	t.Helper()
	if got, _ := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonImmediate)); got != n {
		t.Errorf("real_servers_deleted_total{reason=immediate} = %v, want %v", got, n)
	}
}

// A readiness flap (not ready, not serving, not terminating, on a Ready
// node) leaves a live pod: weight 0 under the gate too, and back to weight
// 1 when it is ready again, its connections untouched.
func TestImmediateTerminationReadinessFlapIsGraceful(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	cur := webOldAndNew(t, k, p, 2)
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 2, 3))
	cur = updateSlice(t, p, cur, setConditions(0, notReady()))
	wantDump(t, "ipvs while not ready", ipvsDump(k), oldParkedAndNew)
	wantFlowsKept(t, k, "a readiness flap")
	syncOK(t, p)
	passSyncPeriod(p)
	syncOK(t, p) // nor does a full sync delete it while it has connections
	wantDump(t, "ipvs after a full sync", ipvsDump(k), oldParkedAndNew)
	updateSlice(t, p, cur, setConditions(0, readyConditions()))
	wantDump(t, "ipvs when ready again", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=2 inactive=3
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	wantDeletedImmediately(t, p, 0)
}

// Topology hints that stop sending this node's traffic to an endpoint
// leave its pod serving other zones: weight 0, not deleted.
func TestImmediateTerminationTopologyExclusionIsGraceful(t *testing.T) {
	k := newKernel(t)
	flows(k, conntrack.ProtoTCP)
	p := gateOnProxier(t, k)
	p.OnTopologyChange(map[string]string{v1.LabelTopologyZone: "zone-a"})
	p.OnServiceAdd(svc("web", vip.String()))
	old, nw := readyEP(oldPod.String()), readyEP(newPod.String())
	old.zone, nw.zone = "zone-a", "zone-a"
	cur := slice("web", discovery.AddressTypeIPv4, old, nw)
	p.OnEndpointSliceAdd(cur)
	syncOK(t, p)
	connectOld(t, k)
	updateSlice(t, p, cur, func(s *discovery.EndpointSlice) {
		s.Endpoints[0].Zone = ptr.To("zone-b")
		s.Endpoints[0].Hints = &discovery.EndpointHints{ForZones: []discovery.ForZone{{Name: "zone-b"}}}
	})
	wantDump(t, "ipvs once hinted to zone-b", ipvsDump(k), oldParkedAndNew)
	wantFlowsKept(t, k, "an endpoint other zones still use")
	wantDeletedImmediately(t, p, 0)
}

// externalTrafficPolicy: Local falls back to every endpoint while the node
// has none of its own; when a local one appears, the node port stops using
// the remote ones, which keep serving: weight 0 there, not deleted.
func TestImmediateTerminationExternalLocalSwitchIsGraceful(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	p.OnServiceAdd(svc("web", vip.String(), func(s *v1.Service) {
		s.Spec.Type, s.Spec.Ports[0].NodePort = v1.ServiceTypeNodePort, 30080
		s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = v1.ServiceExternalTrafficPolicyLocal, 31000
	}))
	cur := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()))
	p.OnEndpointSliceAdd(cur)
	syncOK(t, p)
	connectOld(t, k)
	updateSlice(t, p, cur, func(s *discovery.EndpointSlice) {
		s.Endpoints = append(s.Endpoints, slice("x", discovery.AddressTypeIPv4, localEP(localPod.String())).Endpoints...)
	})
	wantDump(t, "ipvs once a local endpoint exists", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.1:8080 weight=1 active=2 inactive=3
		TCP 192.168.0.10:30080 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=3`)
	wantDeletedImmediately(t, p, 0)
}

// internalTrafficPolicy turned Local stops the cluster IP from using remote
// endpoints, which keep serving other nodes: weight 0, not deleted.
func TestImmediateTerminationInternalPolicyChangeIsGraceful(t *testing.T) {
	k := newKernel(t)
	flows(k, conntrack.ProtoTCP)
	p := gateOnProxier(t, k)
	cluster := svc("web", vip.String())
	p.OnServiceAdd(cluster)
	p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), localEP(localPod.String())))
	syncOK(t, p)
	connectOld(t, k)
	local := cluster.DeepCopy()
	local.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
	p.OnServiceUpdate(cluster, local)
	syncOK(t, p)
	wantDump(t, "ipvs with internalTrafficPolicy Local", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.0.5:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=3`)
	wantFlowsKept(t, k, "a remote endpoint other nodes still use")
	wantDeletedImmediately(t, p, 0)
}

// A session-affinity change updates the virtual server in place: its real
// servers stay, a draining one too (at weight 0 with its connections).
func TestImmediateTerminationAffinityChangeKeepsRealServers(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	plain := svc("web", vip.String())
	p.OnServiceAdd(plain)
	cur := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	p.OnEndpointSliceAdd(cur)
	syncOK(t, p)
	connectOld(t, k)
	updateSlice(t, p, cur, setConditions(0, notReady()))
	sticky := plain.DeepCopy()
	sticky.Spec.SessionAffinity = v1.ServiceAffinityClientIP
	sticky.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	p.OnServiceUpdate(plain, sticky)
	syncOK(t, p)
	wantDump(t, "ipvs with ClientIP affinity", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x3 timeout=60 netmask=0xffffffff
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=3
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	p.OnServiceUpdate(sticky, plain)
	syncOK(t, p)
	wantDump(t, "ipvs without affinity", ipvsDump(k), oldParkedAndNew)
	wantDeletedImmediately(t, p, 0)
}

// Rule 1: an endpoint that left every EndpointSlice is deleted at once,
// also when it was already parked at weight 0 (here by a readiness flap).
func TestImmediateTerminationDeletesEndpointGoneFromEverySlice(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = true // no finish grace: a parked one with connections goes at once
	p := newTestProxier(t, k, cfg)
	cur := webOldAndNew(t, k, p, 2)
	cur = updateSlice(t, p, cur, setConditions(0, notReady()))
	wantDump(t, "ipvs while not ready", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=2
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	removeOld(t, p, cur)
	wantDump(t, "ipvs once gone", ipvsDump(k), onlyNewPod)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
	wantDeletedImmediately(t, p, 1)
}

// Rule 2: an endpoint that terminates and no longer serves is deleted at
// once, its flows flushed.
func TestImmediateTerminationDeletesTerminatingNotServing(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	cur := webOldAndNew(t, k, p, 2)
	updateSlice(t, p, cur, setConditions(0, discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(true)}))
	wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
	wantDeletedImmediately(t, p, 1)
}

// Rule 3: an endpoint that is not ready on a node the API server reports
// as not Ready (the node-lifecycle controller's shape of a lost node) is
// deleted at once; on a Ready node it is a readiness flap.
func TestImmediateTerminationLostNode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		notReady sets.Set[string]
		want     string
		flushed  bool
	}{
		{"node NotReady", sets.New("node-b"), onlyNewPod, true},
		{"node Ready", sets.New("node-c"), oldParkedAndNew, false},
		{"no node NotReady", nil, oldParkedAndNew, false},
		// Terminating and still serving on a NotReady node: the API says the
		// pod still answers; it drains as everywhere else.
		{"node NotReady, terminating and serving", sets.New("node-b"), oldParkedAndNew, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p := gateOnProxier(t, k)
			cur := webOldAndNew(t, k, p, 2)
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 2, 3))
			p.OnNodesNotReady(tc.notReady)
			syncOK(t, p)
			// Still ready on its node: used as long as the API says ready.
			wantDump(t, "ipvs before the pods are marked", ipvsDump(k), `
				TCP 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.1:8080 weight=1 active=2 inactive=3
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
			conditions := notReady()
			if strings.Contains(tc.name, "serving") {
				conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
			}
			updateSlice(t, p, cur, setConditions(0, conditions))
			wantDump(t, "ipvs", ipvsDump(k), tc.want)
			if tc.flushed {
				wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
			} else {
				wantFlowsKept(t, k, "a live pod")
			}
		})
	}
}

// Rule 3 follows the node: an endpoint parked at weight 0 is deleted by the
// sync after its node turns NotReady; the node Ready again deletes nothing
// (a ready endpoint on it was never touched; a not-ready one is parked).
func TestImmediateTerminationLostNodeFollowsTheNode(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = true // no finish grace: the parked one goes in the next sync
	p := newTestProxier(t, k, cfg)
	cur := webOldAndNew(t, k, p, 2)
	cur = updateSlice(t, p, cur, setConditions(0, notReady()))
	wantDump(t, "ipvs while the node is Ready", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=2
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	p.OnNodesNotReady(sets.New("node-b"))
	syncOK(t, p)
	// The new pod is on node-b too, but still ready: kept.
	wantDump(t, "ipvs once the node is NotReady", ipvsDump(k), onlyNewPod)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
	p.OnNodesNotReady(sets.New[string]())
	syncOK(t, p)
	wantDump(t, "ipvs once the node is Ready again", ipvsDump(k), onlyNewPod)
	// The old pod comes back, ready; then flaps: parked, not deleted.
	cur = updateSlice(t, p, cur, setConditions(0, readyConditions()))
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 2, 3))
	updateSlice(t, p, cur, setConditions(0, notReady()))
	wantDump(t, "ipvs after a flap on a Ready node", ipvsDump(k), oldParkedAndNew)
	wantDeletedImmediately(t, p, 1)
}

// The lost-node rule reads the node of an endpoint from the slices: a
// slice's update or deletion updates it, other slices of the Service keep
// theirs, and the other family's slices are not indexed.
func TestEndpointNodesIndex(t *testing.T) {
	x := newEndpointNodes(v1.IPv4Protocol)
	a := slice("web", discovery.AddressTypeIPv4, ep{ip: "10.244.1.1", node: "node-b"}, readyEP("10.244.1.2"))
	b := slice("web", discovery.AddressTypeIPv4, ep{ip: "10.244.2.1", node: "node-c"})
	b.Name = "web-def"
	v6 := slice("web", discovery.AddressTypeIPv6, ep{ip: "fd00::1", node: "node-d"})
	v6.Name = "web-v6"
	for _, s := range []*discovery.EndpointSlice{a, b, v6} {
		x.update(s, false)
	}
	web := nsName("web")
	want := map[netip.Addr]string{netip.MustParseAddr("10.244.1.1"): "node-b", netip.MustParseAddr("10.244.2.1"): "node-c"}
	if got := x.snapshot()[web]; !mapsEqual(got, want) {
		t.Errorf("index = %v, want %v", got, want)
	}
	x.update(slice("web", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("10.244.1.2")), false) // ready again
	delete(want, netip.MustParseAddr("10.244.1.1"))
	if got := x.snapshot()[web]; !mapsEqual(got, want) {
		t.Errorf("after an update: index = %v, want %v", got, want)
	}
	x.update(b, true)
	if got := x.snapshot(); len(got) != 0 {
		t.Errorf("after the deletion: index = %v, want empty", got)
	}
}

func mapsEqual(a, b map[netip.Addr]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A restarted proxier finds a weight-0 real server an earlier run parked,
// with 7 established connections. Gate off, it is upstream's: kept until
// idle, whatever its endpoint's state. Gate on, it is deleted at once only
// when its endpoint is going away (here: gone from every slice); a live
// pod's connections are never cut by a restart.
func TestRestartKeepsLeftoversOfLivePods(t *testing.T) {
	old := func(c discovery.EndpointConditions) []ep {
		e := readyEP(oldPod.String())
		e.ready, e.serving, e.terminating = *c.Ready, *c.Serving, *c.Terminating
		return []ep{e, readyEP(newPod.String())}
	}
	const kept = `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=7 inactive=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`
	for _, tc := range []struct {
		name      string
		gate      bool
		endpoints []ep
		want      string
		stale     float64
	}{
		{"gate off, terminating and serving", false, old(discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}), kept, 0},
		{"gate on, terminating and serving", true, old(discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}), kept, 0},
		{"gate off, not ready", false, old(notReady()), kept, 0},
		{"gate on, not ready", true, old(notReady()), kept, 0},
		{"gate off, gone", false, []ep{readyEP(newPod.String())}, kept, 0},
		{"gate on, gone", true, []ep{readyEP(newPod.String())}, onlyNewPod, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			flows(k, conntrack.ProtoTCP)
			must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: vipKey, Scheduler: "rr"}))
			must(t, k.ipvs.AddDestination(vipKey, ipvs.Destination{DestinationKey: oldDest, Weight: 0}))
			must(t, k.ipvs.AddDestination(vipKey, ipvs.Destination{DestinationKey: ipvs.DestinationKey{Address: newPod, Port: 8080}, Weight: 0}))
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 7, 0))
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination, cfg.FinishGrace = tc.gate, DefaultFinishGrace
			p := newTestProxier(t, k, cfg)
			p.OnServiceAdd(svc("web", vip.String()))
			p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, tc.endpoints...))
			syncOK(t, p)
			wantDump(t, "ipvs after the first sync", ipvsDump(k), tc.want)
			if tc.want == kept {
				wantFlowsKept(t, k, "a leftover kept")
			} else {
				wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
			}
			if got, _ := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonStale)); got != tc.stale {
				t.Errorf("real_servers_deleted_total{reason=stale} = %v, want %v", got, tc.stale)
			}
			if tc.want != kept {
				return
			}
			// Once idle, the next full sync deletes it (as upstream's
			// periodic check does) unless its endpoint is used again.
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 0))
			passSyncPeriod(p)
			syncOK(t, p)
			wantDump(t, "ipvs once idle", ipvsDump(k), onlyNewPod)
			if got, _ := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonDrained)); got != 1 {
				t.Errorf("real_servers_deleted_total{reason=drained} = %v, want 1", got)
			}
		})
	}
}

// An idle weight-0 leftover is deleted on the first sync under either
// policy, as upstream would ("stale").
func TestRestartDeletesIdleLeftovers(t *testing.T) {
	for _, gate := range []bool{false, true} {
		k := newKernel(t)
		must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: vipKey, Scheduler: "rr"}))
		must(t, k.ipvs.AddDestination(vipKey, ipvs.Destination{DestinationKey: oldDest, Weight: 0}))
		cfg := testConfig(v1.IPv4Protocol)
		cfg.ImmediateTermination = gate
		p := newTestProxier(t, k, cfg)
		p.OnServiceAdd(svc("web", vip.String()))
		p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String())))
		syncOK(t, p)
		wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
		if got, _ := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonStale)); got != 1 {
			t.Errorf("gate %v: real_servers_deleted_total{reason=stale} = %v, want 1", gate, got)
		}
	}
}

// Informers deliver slices while syncs run: the index has its own lock and
// syncs read a snapshot (run with -race). Whatever the interleaving, the
// sync after the last change sees the endpoint not ready on its NotReady
// node, and deletes it.
func TestEndpointNodesConcurrentWithSyncs(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	cur := webOldAndNew(t, k, p, 0)
	p.OnNodesNotReady(sets.New("node-b"))
	syncOK(t, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := cur
		for i := range 200 {
			next := s.DeepCopy()
			next.Endpoints[0].Conditions = readyConditions()
			if i%2 == 0 {
				next.Endpoints[0].Conditions = notReady()
			}
			p.OnEndpointSliceUpdate(s, next)
			s = next
		}
		final := s.DeepCopy()
		final.Endpoints[0].Conditions = notReady()
		p.OnEndpointSliceUpdate(s, final)
	}()
	for range 50 {
		syncOK(t, p)
	}
	<-done
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
}
