package ipvs

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

var (
	vip     = netip.MustParseAddr("10.96.0.1")
	vipKey  = ipvs.ServiceKey{Address: vip, Protocol: ipvs.TCP, Port: 80}
	oldPod  = netip.MustParseAddr("10.244.1.1")
	newPod  = netip.MustParseAddr("10.244.1.2")
	oldDest = ipvs.DestinationKey{Address: oldPod, Port: 8080}
)

// flows puts conntrack entries for the service to both pods, plus one
// unrelated flow, as IPVS with vs/conntrack=1 leaves them.
func flows(k *kernel, proto uint8) {
	for i, pod := range []netip.Addr{oldPod, newPod} {
		k.conntrack.Add(conntrack.Entry{Protocol: proto, OrigSrc: netip.MustParseAddr("10.244.9.9"), OrigSrcPort: uint16(40000 + i),
			OrigDst: vip, OrigDstPort: 80, ReplySrc: pod, ReplySrcPort: 8080})
	}
	k.conntrack.Add(conntrack.Entry{Protocol: proto, OrigSrc: netip.MustParseAddr("10.244.9.9"), OrigSrcPort: 40009,
		OrigDst: netip.MustParseAddr("10.96.0.99"), OrigDstPort: 80, ReplySrc: oldPod, ReplySrcPort: 8080})
}

// rollingUpdate programs a service with two pods, then removes the old one
// (as the EndpointSlice controller does once the pod is gone).
func rollingUpdate(t *testing.T, k *kernel, cfg Config, proto v1.Protocol, mutate ...func(*v1.Service)) *Proxier {
	t.Helper()
	p := newTestProxier(t, k, cfg)
	p.OnServiceAdd(svc("web", vip.String(), append([]func(*v1.Service){withProto(proto)}, mutate...)...))
	before := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	before.Ports[0].Protocol = ptr.To(proto)
	p.OnEndpointSliceAdd(before)
	syncOK(t, p)
	key := ipvs.ServiceKey{Address: vip, Protocol: ipvs.Protocol(proto), Port: 80}
	must(t, k.ipvs.SetConnections(key, oldDest, 2, 3))
	after := before.DeepCopy()
	after.Endpoints = after.Endpoints[1:]
	p.OnEndpointSliceUpdate(before, after)
	syncOK(t, p)
	return p
}

func TestGracefulTerminationParksTCPAtWeightZeroUntilDrained(t *testing.T) {
	k := newKernel(t)
	flows(k, conntrack.ProtoTCP)
	p := rollingUpdate(t, k, testConfig(v1.IPv4Protocol), v1.ProtocolTCP)
	wantDump(t, "ipvs after removal", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=3
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	if n := len(strings.Split(strings.TrimSpace(k.conntrack.Dump()), "\n")); n != 3 {
		t.Errorf("graceful TCP must not flush conntrack; %d entries left:\n%s", n, k.conntrack.Dump())
	}
	syncOK(t, p) // still draining: stays
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 0))
	passSyncPeriod(p) // drained real servers are found by the periodic full sync
	syncOK(t, p)
	wantDump(t, "ipvs after draining", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
}

func TestGracefulTerminationRestoresReturningEndpoint(t *testing.T) {
	k := newKernel(t)
	p := rollingUpdate(t, k, testConfig(v1.IPv4Protocol), v1.ProtocolTCP)
	s := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	p.OnEndpointSliceUpdate(nil, s)
	syncOK(t, p)
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=1 active=2 inactive=3
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
}

func TestGracefulTerminationDeletesUDPAtOnceAndFlushesItsFlows(t *testing.T) {
	k := newKernel(t)
	flows(k, conntrack.ProtoUDP)
	rollingUpdate(t, k, testConfig(v1.IPv4Protocol), v1.ProtocolUDP)
	wantDump(t, "ipvs", ipvsDump(k), `
		UDP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoUDP))
}

// conntrackAfterFlush is the conntrack table once the old pod's flows through
// the VIP are gone: the new pod's flow and the unrelated flow survive.
func conntrackAfterFlush(proto uint8) string {
	k := &kernel{conntrack: conntrack.NewFake()}
	flows(k, proto)
	_, _ = k.conntrack.Delete([]conntrack.Filter{{Protocol: proto, OrigDst: vip, OrigDstPort: 80, ReplySrc: oldPod, ReplySrcPort: 8080}})
	return k.conntrack.Dump()
}

func TestImmediateTerminationDeletesRealServerAndFlows(t *testing.T) {
	for _, proto := range []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP} {
		t.Run(string(proto), func(t *testing.T) {
			k := newKernel(t)
			num := protoNumber(ipvs.Protocol(proto))
			flows(k, num)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination = true
			p := rollingUpdate(t, k, cfg, proto)
			wantDump(t, "ipvs", ipvsDump(k), string(proto)+` 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
			wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(num))
			if got, err := testutil.GetCounterMetricValue(p.metrics.RealServersDeleted.WithLabelValues(reasonImmediate)); err != nil || got != 1 {
				t.Errorf("real_servers_deleted_total{reason=immediate} = %v, want 1", got)
			}
		})
	}
}

func TestTerminationAnnotationOverridesGate(t *testing.T) {
	for _, tc := range []struct {
		gate       bool
		annotation string
		want       string
	}{
		{false, PolicyImmediate, `
			TCP 10.96.0.1:80 rr flags=0x2 timeout=0
			  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`},
		{true, PolicyGraceful, `
			TCP 10.96.0.1:80 rr flags=0x2 timeout=0
			  -> 10.244.1.1:8080 weight=0 active=2 inactive=3
			  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`},
		{true, "bogus", `
			TCP 10.96.0.1:80 rr flags=0x2 timeout=0
			  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`},
	} {
		t.Run(tc.annotation, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination = tc.gate
			rollingUpdate(t, k, cfg, v1.ProtocolTCP, withAnnotation(TerminationPolicyAnnotation, tc.annotation))
			wantDump(t, "ipvs", ipvsDump(k), tc.want)
		})
	}
}

// webOldAndNew programs Service web with the old and the new pod ready;
// the old one has conns established connections and 2 closing ones.
func webOldAndNew(t *testing.T, k *kernel, p *Proxier, conns int) *discovery.EndpointSlice {
	t.Helper()
	flows(k, conntrack.ProtoTCP)
	p.OnServiceAdd(svc("web", vip.String()))
	both := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	p.OnEndpointSliceAdd(both)
	syncOK(t, p)
	must(t, k.ipvs.SetConnections(vipKey, oldDest, conns, 2))
	return both
}

// terminateOld makes the old pod terminating but still serving, and syncs.
func terminateOld(t *testing.T, p *Proxier, cur *discovery.EndpointSlice) *discovery.EndpointSlice {
	t.Helper()
	next := cur.DeepCopy()
	next.Endpoints[0].Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	p.OnEndpointSliceUpdate(cur, next)
	syncOK(t, p)
	return next
}

// removeOld removes the old pod from the slice, and syncs.
func removeOld(t *testing.T, p *Proxier, cur *discovery.EndpointSlice) {
	t.Helper()
	next := cur.DeepCopy()
	next.Endpoints = next.Endpoints[1:]
	p.OnEndpointSliceUpdate(cur, next)
	syncOK(t, p)
}

func wantFlowsKept(t *testing.T, k *kernel, why string) {
	t.Helper()
	if n := len(strings.Split(strings.TrimSpace(k.conntrack.Dump()), "\n")); n != 3 {
		t.Errorf("%s: flows must stay; %d left:\n%s", why, n, k.conntrack.Dump())
	}
}

const onlyNewPod = `
	TCP 10.96.0.1:80 rr flags=0x2 timeout=0
	  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`

// A pod that is terminating but still serving keeps answering the requests
// it has: under the immediate policy too its real server drains at weight 0,
// and is deleted (flows flushed) once the endpoint vanishes.
func TestImmediateTerminationDrainsServingTerminatingEndpoint(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination, cfg.FinishGrace = true, DefaultFinishGrace
	p := newTestProxier(t, k, cfg)
	terminating := terminateOld(t, p, webOldAndNew(t, k, p, 1))
	wantDump(t, "ipvs while terminating", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=1 inactive=2
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
	wantFlowsKept(t, k, "a still-serving pod")
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 3))
	removeOld(t, p, terminating)
	wantDump(t, "ipvs once the pod is gone", ipvsDump(k), onlyNewPod)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
}

// A draining endpoint removed while requests are still in flight to it (its
// process may still run) keeps its real server until they finish, or
// FinishGrace has passed, then it is deleted and its flows flushed.
func TestImmediateTerminationLetsRequestsInFlightFinish(t *testing.T) {
	for _, tc := range []struct {
		name     string
		finishAt func(k *kernel, clock *time.Time)
	}{
		{"requests finish", func(k *kernel, clock *time.Time) {
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 2))
			*clock = clock.Add(10 * time.Millisecond)
		}},
		{"grace passes", func(_ *kernel, clock *time.Time) { *clock = clock.Add(DefaultFinishGrace) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination, cfg.FinishGrace = true, DefaultFinishGrace
			p, c := newClockedProxier(t, k, cfg)
			clock := &c.now
			removeOld(t, p, terminateOld(t, p, webOldAndNew(t, k, p, 1)))
			*clock = clock.Add(DefaultFinishGrace / 2)
			syncOK(t, p) // the recheck: still in flight, within the grace
			wantDump(t, "ipvs while a request is in flight", ipvsDump(k), `
				TCP 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.1:8080 weight=0 active=1 inactive=2
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
			wantFlowsKept(t, k, "a pod with requests in flight")
			tc.finishAt(k, clock)
			syncOK(t, p)
			wantDump(t, "ipvs once finished", ipvsDump(k), onlyNewPod)
			wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
		})
	}
}

// An endpoint removed while it was ready (the shape of a lost node) is
// deleted at once even with connections established: they cannot finish.
func TestImmediateTerminationDeletesReadyEndpointWithConnections(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination, cfg.FinishGrace = true, DefaultFinishGrace
	p := newTestProxier(t, k, cfg)
	removeOld(t, p, webOldAndNew(t, k, p, 4))
	wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
	wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
}

// finishingOld makes the old pod terminate and vanish with one connection
// established to it, under the immediate policy and a minSyncPeriod far
// longer than the grace; it returns when the removal was synced.
func finishingOld(t *testing.T, k *kernel) (*Proxier, *fakeClock, time.Time) {
	t.Helper()
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination, cfg.FinishGrace, cfg.MinSyncPeriod = true, DefaultFinishGrace, time.Second
	p, clock := newClockedProxier(t, k, cfg)
	removeOld(t, p, terminateOld(t, p, webOldAndNew(t, k, p, 1)))
	return p, clock, clock.now
}

// The grace is checked by its own timer, not by syncs that minSyncPeriod
// holds back: the real server is gone within grace + one poll, and as soon
// as its connections finish (within one poll), without any sync.
func TestFinishGraceIndependentOfMinSyncPeriod(t *testing.T) {
	for _, tc := range []struct {
		name string
		// doneAt is when the connection finishes (0: never).
		doneAt, wantBy time.Duration
	}{
		{"grace passes", 0, DefaultFinishGrace + finishPoll},
		{"requests finish", 2 * finishPoll, 3 * finishPoll},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p, clock, removed := finishingOld(t, k)
			syncs := syncCount(p)
			for strings.Contains(ipvsDump(k), oldPod.String()) {
				if tc.doneAt > 0 && clock.now.Sub(removed) >= tc.doneAt {
					must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 3))
				}
				if !clock.fireNext() {
					t.Fatalf("old pod's real server still there %v after its removal, and no check pending:\n%s", clock.now.Sub(removed), ipvsDump(k))
				}
				if clock.now.Sub(removed) > tc.wantBy {
					t.Fatalf("old pod's real server still there %v after its removal (want gone by %v)", clock.now.Sub(removed), tc.wantBy)
				}
			}
			if tc.doneAt == 0 && clock.now.Sub(removed) < DefaultFinishGrace {
				t.Errorf("deleted %v after its removal, with a connection established: before the grace %v", clock.now.Sub(removed), DefaultFinishGrace)
			}
			wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
			wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
			if got := syncCount(p); got != syncs {
				t.Errorf("the check ran %v syncs; it must not be one", got-syncs)
			}
			if clock.fireNext() && len(clock.pending) > 0 {
				t.Errorf("checks still scheduled with nothing finishing: %d", len(clock.pending))
			}
		})
	}
}

// syncCount is the number of syncs run so far, of any kind and result.
func syncCount(p *Proxier) float64 {
	var n float64
	for _, kind := range []string{"full", "partial"} {
		for _, result := range []string{"success", "error"} {
			v, _ := testutil.GetCounterMetricValue(p.metrics.SyncsTotal.WithLabelValues(kind, result))
			n += v
		}
	}
	return n
}

// A failed deletion in the check is retried by a full resync, which still
// deletes the real server (its grace is not started again) and flushes its
// flows; a failed flush stays pending (no resync) and is retried once its
// backoff has passed.
func TestFinishCheckErrorsRetriedByFullResync(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resync bool
		inject func(k *kernel, fail bool)
	}{
		{"delete real server", true, func(k *kernel, fail bool) {
			k.ipvs.Inject = nil
			if fail {
				k.ipvs.Inject = failOn("DeleteDestination")
			}
		}},
		{"flush conntrack", false, func(k *kernel, fail bool) {
			k.conntrack.Inject = nil
			if fail {
				k.conntrack.Inject = failOn("Delete")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p, clock, removed := finishingOld(t, k)
			tc.inject(k, true)
			for clock.now.Sub(removed) < DefaultFinishGrace && clock.fireNext() {
			}
			if p.needFull != tc.resync {
				t.Errorf("after the failed check needFull = %v, want %v", p.needFull, tc.resync)
			}
			tc.inject(k, false)
			// A pending flush's backoff passes; the retry runs with the
			// connection still established.
			clock.now = clock.now.Add(flushBackoffMin)
			syncOK(t, p)
			wantDump(t, "ipvs after the resync", ipvsDump(k), onlyNewPod)
			wantDump(t, "conntrack after the resync", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
		})
	}
}

func failOn(op string) func(string, string) error {
	return func(o, object string) error {
		if o == op {
			return errors.New("injected failure of " + o + " " + object)
		}
		return nil
	}
}

// conn is an IPVS connection of the client's source port to the web
// service's pod.
func conn(port uint16, pod netip.Addr, state string) ipvs.Connection {
	return ipvs.Connection{Protocol: ipvs.TCP, Client: netip.AddrPortFrom(netip.MustParseAddr("192.168.50.2"), port),
		Virtual: netip.AddrPortFrom(vip, 80), Real: netip.AddrPortFrom(pod, 8080), State: state}
}

// A connection in its handshake (SYN_RECV: a new connection reusing a source
// port, which before kernel 5.9 still lands on a weight-0 real server) is
// inactive for IPVS, but deleting its real server resets it: the removed
// endpoint's real server stays until no connection to it is open, within
// the grace.
func TestFinishWaitsForConnectionsInHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		// completes says whether the handshake completes (at 2 polls).
		completes bool
		wantBy    time.Duration
	}{
		{"handshake completes", true, 3 * finishPoll},
		{"handshake never completes", false, DefaultFinishGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination, cfg.FinishGrace, cfg.MinSyncPeriod = true, DefaultFinishGrace, time.Second
			p, clock := newClockedProxier(t, k, cfg)
			terminating := terminateOld(t, p, webOldAndNew(t, k, p, 0))
			if n := k.ipvs.Calls["Connections"]; n != 0 {
				t.Errorf("the connection table was read %d times before anything finished", n)
			}
			must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 3))
			k.ipvs.SetConnectionTable([]ipvs.Connection{
				conn(40000, oldPod, "TIME_WAIT"), conn(40001, oldPod, "SYN_RECV"), conn(40002, newPod, "SYN_RECV"),
			})
			removeOld(t, p, terminating)
			removed := clock.now
			wantDump(t, "ipvs with a handshake in flight", ipvsDump(k), `
				TCP 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.1:8080 weight=0 active=0 inactive=3
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
			wantFlowsKept(t, k, "a pod with a handshake in flight")
			for strings.Contains(ipvsDump(k), oldPod.String()) {
				if tc.completes && clock.now.Sub(removed) >= 2*finishPoll {
					k.ipvs.SetConnectionTable([]ipvs.Connection{conn(40000, oldPod, "TIME_WAIT"), conn(40001, oldPod, "TIME_WAIT")})
				}
				if !clock.fireNext() {
					t.Fatalf("old pod's real server still there %v after its removal, and no check pending", clock.now.Sub(removed))
				}
				if clock.now.Sub(removed) > tc.wantBy {
					t.Fatalf("old pod's real server still there %v after its removal (want gone by %v)", clock.now.Sub(removed), tc.wantBy)
				}
			}
			if !tc.completes && clock.now.Sub(removed) < DefaultFinishGrace {
				t.Errorf("deleted %v after its removal with a handshake in flight, before the grace %v", clock.now.Sub(removed), DefaultFinishGrace)
			}
			wantDump(t, "ipvs", ipvsDump(k), onlyNewPod)
			wantDump(t, "conntrack", k.conntrack.Dump(), conntrackAfterFlush(conntrack.ProtoTCP))
		})
	}
}
