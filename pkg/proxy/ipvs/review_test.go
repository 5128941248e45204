package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// A Service whose target port changes (the pods stay, the endpoint port
// moves from 8080 to 9090) leaves every pod alive: the real servers on the
// old port drain at weight 0 as upstream's do, under the gate too; the
// pods' established connections are healthy.
func TestImmediateTerminationTargetPortChangeIsGraceful(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	cur := webOldAndNew(t, k, p, 2)
	updateSlice(t, p, cur, func(s *discovery.EndpointSlice) { s.Ports[0].Port = ptr.To[int32](9090) })
	wantDump(t, "ipvs after the target port changed", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=2
		  -> 10.244.1.1:9090 weight=1 active=0 inactive=0
		  -> 10.244.1.2:9090 weight=1 active=0 inactive=0`)
	wantFlowsKept(t, k, "a target port change")
	wantDeletedImmediately(t, p, 0)
}

// An address not ready in two slices of a Service on two nodes, one of
// them lost (a pod IP reused on another node while the slices catch up):
// its pod on the Ready node may be alive, so its real server drains at
// weight 0, every time (the index's map order decided it before).
func TestLostNodeRuleIgnoresAnAddressOnTwoNodes(t *testing.T) {
	for i := range 20 {
		k := newKernel(t)
		p := gateOnProxier(t, k)
		cur := webOldAndNew(t, k, p, 2)
		must(t, k.ipvs.SetConnections(vipKey, oldDest, 2, 3))
		p.OnNodesNotReady(sets.New("node-lost"))
		syncOK(t, p)
		other := slice("web", discovery.AddressTypeIPv4, ep{ip: oldPod.String(), node: "node-lost"})
		other.Name = "web-def"
		p.OnEndpointSliceAdd(other)
		updateSlice(t, p, cur, setConditions(0, notReady()))
		if got, want := strings.TrimSpace(ipvsDump(k)), dedent(oldParkedAndNew); got != want {
			t.Fatalf("run %d: ipvs:\n%s\nwant\n%s", i, got, want)
		}
	}
}

// readFailingIPVS fails the reads the finish check makes.
type readFailingIPVS struct {
	*ipvs.Fake
	destinations, connections bool
}

func (f readFailingIPVS) Destinations(key ipvs.ServiceKey) ([]ipvs.Destination, error) {
	if f.destinations {
		return nil, fmt.Errorf("injected failure reading the real servers of %s: %w", key, syscall.EIO)
	}
	return f.Fake.Destinations(key)
}

func (f readFailingIPVS) Connections(fn func(ipvs.Connection) bool) error {
	if f.connections {
		return fmt.Errorf("injected failure reading the connection table: %w", syscall.EIO)
	}
	return f.Fake.Connections(fn)
}

// A finishing real server whose reads keep failing in every check (its
// real servers, or the connection table) is still deleted when the grace
// ends: at most 300 ms after its endpoint's removal, as the docs promise,
// with minSyncPeriod 1 s; its flows are flushed.
func TestFinishGraceHoldsWhenTheCheckCannotRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		ipvs func(*ipvs.Fake) readFailingIPVS
		// active: the old pod's established connections (0: the
		// handshake check reads the connection table).
		active int
		// fromRemoval: the reads fail in the removal's sync too (it fails).
		fromRemoval bool
	}{
		{"real servers unreadable", func(f *ipvs.Fake) readFailingIPVS { return readFailingIPVS{Fake: f, destinations: true} }, 1, false},
		{"real servers unreadable from the removal", func(f *ipvs.Fake) readFailingIPVS { return readFailingIPVS{Fake: f, destinations: true} }, 1, true},
		{"connection table unreadable", func(f *ipvs.Fake) readFailingIPVS { return readFailingIPVS{Fake: f, connections: true} }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination, cfg.FinishGrace, cfg.MinSyncPeriod = true, DefaultFinishGrace, time.Second
			p, clock := newClockedProxier(t, k, cfg)
			terminating := terminateOld(t, p, webOldAndNew(t, k, p, tc.active))
			must(t, k.ipvs.SetConnections(vipKey, oldDest, tc.active, 3))
			if tc.fromRemoval {
				p.deps.IPVS = tc.ipvs(k.ipvs)
			}
			next := terminating.DeepCopy()
			next.Endpoints = next.Endpoints[1:]
			p.OnEndpointSliceUpdate(terminating, next)
			if err := p.syncProxyRules(); err != nil {
				t.Logf("the removal's sync: %v", err)
			}
			p.deps.IPVS = tc.ipvs(k.ipvs)
			removed := clock.now
			if !strings.Contains(ipvsDump(k), oldPod.String()) {
				t.Fatalf("deleted at once, without its grace:\n%s", ipvsDump(k))
			}
			for strings.Contains(ipvsDump(k), oldPod.String()) {
				if !clock.fireNext() {
					t.Fatalf("old pod's real server still there %v after its removal, and no check pending", clock.now.Sub(removed))
				}
				if clock.now.Sub(removed) > DefaultFinishGrace {
					t.Fatalf("old pod's real server still there %v after its removal (want gone by %v)", clock.now.Sub(removed), DefaultFinishGrace)
				}
			}
			wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
			wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
		})
	}
}

// A restart finds a weight-0 leftover with 7 established connections whose
// endpoint is gone: the Service's annotation decides as the gate would
// (graceful under the gate keeps it; immediate with the gate off deletes
// it, "stale"); a leftover on a lost node is kept by the first sync (no
// Node listing yet) and deleted once the listing says its node is lost.
func TestRestartLeftoversFollowTheAnnotationAndTheNodeListing(t *testing.T) {
	const kept = `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=7 inactive=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`
	for _, tc := range []struct {
		name, policy string
		gate         bool
		old          []ep // the old pod in the slice, if any
		want         string
		stale        float64
	}{
		{"graceful annotation, gate on, gone", PolicyGraceful, true, nil, kept, 0},
		{"immediate annotation, gate off, gone", PolicyImmediate, false, nil, onlyNewPod, 1},
		{"immediate annotation, gate off, not ready", PolicyImmediate, false, []ep{{ip: oldPod.String(), node: "node-lost"}}, kept, 0},
		{"gate on, not ready on a lost node", "", true, []ep{{ip: oldPod.String(), node: "node-lost"}}, kept, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			flows(k, conntrack.ProtoTCP)
			must(t, k.ipvs.AddService(ipvs.Service{ServiceKey: vipKey, Scheduler: "rr"}))
			must(t, k.ipvs.AddDestination(vipKey, ipvs.Destination{DestinationKey: oldDest, Weight: 0}))
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 7, 0))
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination = tc.gate // no finish grace: a lost node's leftover goes in one sync
			p := newTestProxier(t, k, cfg)
			var mutate []func(*v1.Service)
			if tc.policy != "" {
				mutate = append(mutate, withAnnotation(TerminationPolicyAnnotation, tc.policy))
			}
			p.OnServiceAdd(svc("web", vip.String(), mutate...))
			p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, append(tc.old, readyEP(newPod.String()))...))
			syncOK(t, p)
			wantDump(t, "ipvs after the first sync", ipvsDump(k), tc.want)
			if got, _ := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonStale)); got != tc.stale {
				t.Errorf("real_servers_deleted_total{reason=stale} = %v, want %v", got, tc.stale)
			}
			if !tc.gate {
				return // the Node watch runs under the gate only
			}
			p.OnNodesNotReady(sets.New("node-lost")) // the Node listing arrives
			syncOK(t, p)
			want := tc.want
			if len(tc.old) > 0 {
				want = onlyNewPod
			}
			wantDump(t, "ipvs once the Nodes are listed", ipvsDump(k), want)
		})
	}
}

// Dual stack: each family's proxier indexes its own slices. A pod on a
// lost node, not ready, is deleted at once by both families (its IPv6
// address written in a long form the index must still match); a pod with
// no node name cannot be placed on a lost node and drains.
func TestLostNodeRuleDualStack(t *testing.T) {
	k := newKernel(t)
	cfg4, cfg6 := testConfig(v1.IPv4Protocol), testConfig(v1.IPv6Protocol)
	cfg4.ImmediateTermination, cfg6.ImmediateTermination = true, true
	p4, p6 := newTestProxier(t, k, cfg4), newTestProxier(t, k, cfg6)
	ds := svc("ds", "10.96.0.1", func(s *v1.Service) {
		s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00:96::1"}
		s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	})
	lost := ep{ip: "10.244.1.1", node: "node-lost", ready: true, serving: true}
	lost6 := ep{ip: "fd00:244:0:0:0:0:0:1", node: "node-lost", ready: true, serving: true}
	s4 := slice("ds", discovery.AddressTypeIPv4, lost, readyEP("10.244.1.2"), readyEP("10.244.1.3"))
	s6 := slice("ds", discovery.AddressTypeIPv6, lost6, readyEP("fd00:244::2"), readyEP("fd00:244::3"))
	s6.Name = "ds-v6"
	for _, s := range []*discovery.EndpointSlice{s4, s6} {
		s.Endpoints[2].NodeName = nil
	}
	for _, p := range []*Proxier{p4, p6} {
		p.OnServiceAdd(ds)
		p.OnEndpointSliceAdd(s4)
		p.OnEndpointSliceAdd(s6)
		syncOK(t, p)
	}
	must(t, k.ipvs.SetConnections(ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.1"), Protocol: ipvs.TCP, Port: 80},
		ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.1.3"), Port: 8080}, 1, 0))
	must(t, k.ipvs.SetConnections(ipvs.ServiceKey{Address: netip.MustParseAddr("fd00:96::1"), Protocol: ipvs.TCP, Port: 80},
		ipvs.DestinationKey{Address: netip.MustParseAddr("fd00:244::3"), Port: 8080}, 1, 0))
	for _, p := range []*Proxier{p4, p6} {
		p.OnNodesNotReady(sets.New("node-lost"))
	}
	for _, pair := range [][2]*discovery.EndpointSlice{{s4, s4.DeepCopy()}, {s6, s6.DeepCopy()}} {
		for _, i := range []int{0, 2} {
			pair[1].Endpoints[i].Conditions = notReady()
		}
		for _, p := range []*Proxier{p4, p6} {
			p.OnEndpointSliceUpdate(pair[0], pair[1])
		}
	}
	syncOK(t, p4)
	syncOK(t, p6)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.3:8080 weight=0 active=1 inactive=0
		TCP [fd00:96::1]:80 rr flags=0x2 timeout=0
		  -> [fd00:244::2]:8080 weight=1 active=0 inactive=0
		  -> [fd00:244::3]:8080 weight=0 active=1 inactive=0`)
}

// The backoff of a failing conntrack flush is 1 s, doubling up to
// syncPeriod (docs/operations.md), 1 s when syncPeriod is shorter.
func TestFlushBackoffDoublesToSyncPeriod(t *testing.T) {
	for _, tc := range []struct {
		period time.Duration
		want   []time.Duration
	}{
		{30 * time.Second, []time.Duration{1, 2, 4, 8, 16, 30, 30}},
		{5 * time.Second, []time.Duration{1, 2, 4, 5, 5}},
		{500 * time.Millisecond, []time.Duration{1, 1}},
	} {
		var f pendingFlushes
		now := time.Unix(1000, 0)
		filters := []conntrack.Filter{{Protocol: conntrack.ProtoTCP, OrigDst: vip, OrigDstPort: 80, ReplySrc: oldPod, ReplySrcPort: 8080}}
		for i, w := range tc.want {
			if got := f.failed(filters, now, tc.period); got != w*time.Second {
				t.Errorf("syncPeriod %v, failure %d: backoff %v, want %v", tc.period, i+1, got, w*time.Second)
			}
			if f.take(nil, now.Add(w*time.Second-time.Millisecond)) != nil {
				t.Errorf("syncPeriod %v, failure %d: retried before its backoff", tc.period, i+1)
			}
			now = now.Add(w * time.Second)
			if len(f.take(nil, now)) != 1 {
				t.Errorf("syncPeriod %v, failure %d: not retried once its backoff passed", tc.period, i+1)
			}
		}
		if f.done(); f.failed(filters, now, tc.period) != time.Second {
			t.Errorf("syncPeriod %v: the backoff did not restart at 1 s after a success", tc.period)
		}
	}
}

// Several draining endpoints removed in one sync, each with only closing
// connections (the handshake check applies to each): the connection table
// (every connection of the node: up to a million lines to parse) is read
// once for them all, not once per real server; none is open, so all are
// deleted.
func TestInFlightCheckReadsTheConnectionTableOnce(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination, cfg.FinishGrace = true, DefaultFinishGrace
	p, _ := newClockedProxier(t, k, cfg)
	pods := []string{"10.244.1.1", "10.244.1.3", "10.244.1.4", "10.244.1.2"}
	var eps []ep
	for _, pod := range pods {
		eps = append(eps, readyEP(pod))
	}
	p.OnServiceAdd(svc("web", vip.String()))
	cur := slice("web", discovery.AddressTypeIPv4, eps...)
	p.OnEndpointSliceAdd(cur)
	syncOK(t, p)
	var table []ipvs.Connection
	for i := range 3 {
		pod := netip.MustParseAddr(pods[i])
		must(t, k.ipvs.SetConnections(vipKey, ipvs.DestinationKey{Address: pod, Port: 8080}, 0, 3))
		cur = updateSlice(t, p, cur, setConditions(i, discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}))
		table = append(table, conn(uint16(40000+i), pod, "TIME_WAIT"))
	}
	k.ipvs.SetConnectionTable(table)
	reads := k.ipvs.Calls["Connections"]
	updateSlice(t, p, cur, func(s *discovery.EndpointSlice) { s.Endpoints = s.Endpoints[3:] })
	if n := k.ipvs.Calls["Connections"] - reads; n != 1 {
		t.Errorf("the connection table was read %d times for one sync's deletions, want 1", n)
	}
	wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
}

// A failed flush's endpoint comes back (its pending flush dropped) and
// leaves again while flushes still fail: its flows are pending once, and
// flushed by the first retry after the fault clears.
func TestFailedFlushEndpointReturnsAndLeavesAgain(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	clock := &stepClock{t: time.Now()}
	p.deps.Now = clock.now
	p.OnServiceAdd(svc("web", vip.String(), withAnnotation(TerminationPolicyAnnotation, PolicyImmediate)))
	both := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	one := slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String()))
	p.OnEndpointSliceAdd(both)
	syncOK(t, p)
	flows(k, conntrack.ProtoTCP)
	k.conntrack.Inject = func(op, object string) error { return fmt.Errorf("injected fault on %s: %w", op, syscall.EIO) }
	p.OnEndpointSliceUpdate(both, one)
	syncOK(t, p)
	p.OnEndpointSliceUpdate(one, both)
	syncOK(t, p)
	if len(p.flushes.filters) != 0 {
		t.Errorf("pending flushes of an endpoint back in the Service: %v", p.flushes.filters)
	}
	p.OnEndpointSliceUpdate(both, one)
	syncOK(t, p)
	if len(p.flushes.filters) != 1 {
		t.Errorf("pending flushes after it left again: %v, want its filter once", p.flushes.filters)
	}
	k.conntrack.Inject = nil
	clock.step(flushBackoffMin)
	syncOK(t, p)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
	wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
	if len(p.flushes.filters) != 0 {
		t.Errorf("pending flushes after the retry: %v", p.flushes.filters)
	}
}

// The index reads an endpoint's address as upstream's endpoint cache does
// (its first address, parsed sloppily: an IPv4 address with leading zeros,
// which the API server accepted before it validated strictly, is the
// endpoint 10.244.1.1 to the proxier, so it must be to the index too).
func TestEndpointNodesIndexReadsAddressesAsUpstream(t *testing.T) {
	x := newEndpointNodes(v1.IPv4Protocol)
	s := slice("web", discovery.AddressTypeIPv4, ep{ip: "10.244.001.001", node: "node-lost"})
	s.Endpoints[0].Addresses = append(s.Endpoints[0].Addresses, "10.244.9.9")
	x.update(s, false)
	want := map[netip.Addr]string{netip.MustParseAddr("10.244.1.1"): "node-lost"}
	if got := x.snapshot()[nsName("web")]; !mapsEqual(got, want) {
		t.Errorf("index = %v, want %v", got, want)
	}
}
