package ipvs

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
)

// readFaults wraps the fakes' reads, which have no Inject of their own:
// while fail names a read, that read returns EIO.
type readFaults struct {
	fail string
}

func (r *readFaults) err(op string) error {
	if r.fail == op {
		return fmt.Errorf("injected fault on %s: %w", op, syscall.EIO)
	}
	return nil
}

type readFaultIPVS struct {
	ipvs.Interface
	r *readFaults
}

func (f readFaultIPVS) ListFamily(ipv6 bool) ([]ipvs.VirtualServer, error) {
	if err := f.r.err("ListFamily"); err != nil {
		return nil, err
	}
	return f.Interface.ListFamily(ipv6)
}

type readFaultNetDev struct {
	netdev.Interface
	r *readFaults
}

func (f readFaultNetDev) Addresses(name string) ([]netip.Addr, error) {
	if err := f.r.err("Addresses"); err != nil {
		return nil, err
	}
	return f.Interface.Addresses(name)
}

func (f readFaultNetDev) LocalAddresses(exclude ...string) ([]netip.Addr, error) {
	if err := f.r.err("LocalAddresses"); err != nil {
		return nil, err
	}
	return f.Interface.LocalAddresses(exclude...)
}

type readFaultIPSet struct {
	ipset.Interface
	r *readFaults
}

func (f readFaultIPSet) List(keep func(string) bool) ([]ipset.Contents, error) {
	if err := f.r.err("List"); err != nil {
		return nil, err
	}
	return f.Interface.List(keep)
}

// newReadFaultProxier is newTestProxier with the kernel reads wrapped.
func newReadFaultProxier(t *testing.T, k *kernel) (*Proxier, *readFaults) {
	t.Helper()
	r := &readFaults{}
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.deps.IPVS = readFaultIPVS{k.ipvs, r}
	p.deps.NetDev = readFaultNetDev{k.netdev, r}
	p.deps.IPSet = readFaultIPSet{k.ipset, r}
	return p, r
}

// A sync whose kernel read fails has already taken the changes out of
// upstream's trackers; they must reach the kernel on the next good sync,
// whether the failing sync was the periodic full one or a partial one
// turned full (node addresses unreadable).
func TestChangesTakenBeforeAFailedReadAreApplied(t *testing.T) {
	for _, tc := range []struct {
		read     string
		periodic bool
	}{
		{"ListFamily", true}, {"Addresses", true}, {"LocalAddresses", true}, {"List", true},
		{"LocalAddresses", false},
	} {
		t.Run(fmt.Sprintf("%s/periodic=%v", tc.read, tc.periodic), func(t *testing.T) {
			k := newKernel(t)
			p, r := newReadFaultProxier(t, k)
			p.OnServiceAdd(svc("web", vip.String()))
			p.OnServiceAdd(svc("old", "10.96.0.2"))
			before := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
			p.OnEndpointSliceAdd(before)
			syncOK(t, p)

			// An endpoint removed, a Service deleted, a Service added.
			after := before.DeepCopy()
			after.Endpoints = after.Endpoints[1:]
			p.OnEndpointSliceUpdate(before, after)
			p.OnServiceDelete(svc("old", "10.96.0.2"))
			p.OnServiceAdd(svc("new", "10.96.0.3"))
			if tc.periodic {
				passSyncPeriod(p)
			}
			r.fail = tc.read
			if err := p.syncProxyRules(); err == nil {
				t.Fatalf("sync succeeded with %s failing", tc.read)
			}
			// The retry fails too, with one more change taken.
			p.OnServiceAdd(svc("newer", "10.96.0.4"))
			if err := p.syncProxyRules(); err == nil {
				t.Fatalf("sync succeeded with %s failing", tc.read)
			}
			r.fail = ""
			syncOK(t, p)
			want := `
				TCP 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
				TCP 10.96.0.3:80 rr flags=0x2 timeout=0
				TCP 10.96.0.4:80 rr flags=0x2 timeout=0`
			wantDump(t, "ipvs after the retry", ipvsDump(k), want)
			passSyncPeriod(p)
			syncOK(t, p)
			wantDump(t, "ipvs after the next periodic full sync", ipvsDump(k), want)
			if d := k.netdev.Dump(); strings.Contains(d, "10.96.0.2") || !strings.Contains(d, "10.96.0.3") {
				t.Errorf("addresses after the retry:\n%s", d)
			}
		})
	}
}

// The EndpointSlice change times taken from the tracker by a failed sync
// are observed as network programming latency by the next successful one.
func TestNetworkProgrammingLatencyObservedAfterAFailedSync(t *testing.T) {
	metrics.NewKubeRegistry().MustRegister(proxymetrics.NetworkProgrammingLatency)
	latency := proxymetrics.NetworkProgrammingLatency.WithLabelValues(string(v1.IPv4Protocol))
	k := newKernel(t)
	p, r := newReadFaultProxier(t, k)
	p.OnServiceAdd(svc("web", vip.String()))
	before := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	p.OnEndpointSliceAdd(before)
	syncOK(t, p)
	observed := func() uint64 {
		n, err := testutil.GetHistogramMetricCount(latency)
		must(t, err)
		return n
	}
	start := observed()

	after := before.DeepCopy()
	after.Endpoints = after.Endpoints[1:]
	after.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}
	p.OnEndpointSliceUpdate(before, after)
	r.fail = "ListFamily"
	passSyncPeriod(p)
	if err := p.syncProxyRules(); err == nil {
		t.Fatal("sync succeeded with the IPVS table unreadable")
	}
	if got := observed() - start; got != 0 {
		t.Errorf("a failed sync observed %d programming latencies, want 0", got)
	}
	r.fail = ""
	syncOK(t, p)
	if got := observed() - start; got != 1 {
		t.Errorf("the sync after the failed one observed %d programming latencies, want 1", got)
	}
	syncOK(t, p)
	if got := observed() - start; got != 1 {
		t.Errorf("a later sync observed the change again: %d latencies, want 1", got)
	}
}

// stepClock is the proxier's clock in tests that need backoffs to pass.
type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time       { return c.t }
func (c *stepClock) step(d time.Duration) { c.t = c.t.Add(d) }
func tcpFilter(pod netip.Addr) string {
	return "tcp dst " + vip.String() + ":80 reply-src " + pod.String() + ":8080"
}

// A conntrack flush that keeps failing neither fails the syncs nor makes
// /healthz unhealthy; it is retried with a doubling backoff (and not on
// syncs with nothing new to flush), merged with later flushes without
// duplicates, counted, and done once the fault clears.
func TestFailedConntrackFlushIsRetriedWithoutFailingSyncs(t *testing.T) {
	const healthTimeout = 200 * time.Millisecond
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	hs := healthcheck.NewProxyHealthServer("127.0.0.1:0", healthTimeout, nil)
	clock := &stepClock{t: time.Now()}
	p.deps.HealthServer, p.deps.Now = hs, clock.now
	third := netip.MustParseAddr("10.244.1.3")
	p.OnServiceAdd(svc("web", vip.String(), withAnnotation(TerminationPolicyAnnotation, PolicyImmediate)))
	v1Slice := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()), readyEP(third.String()))
	p.OnEndpointSliceAdd(v1Slice)
	syncOK(t, p)
	flows(k, conntrack.ProtoTCP)

	var attempts []string
	k.conntrack.Inject = func(op, object string) error {
		attempts = append(attempts, object)
		return fmt.Errorf("injected fault on %s %s: %w", op, object, syscall.EIO)
	}
	update := func(eps ...ep) {
		next := slice("web", discovery.AddressTypeIPv4, eps...)
		p.OnEndpointSliceUpdate(v1Slice, next)
		v1Slice = next
	}
	sync := func(what string, wantAttempts int) {
		t.Helper()
		if err := p.syncProxyRules(); err != nil {
			t.Errorf("%s: sync failed: %v", what, err)
		}
		if p.needFull {
			t.Errorf("%s: a failed flush made the next sync full", what)
		}
		if len(attempts) != wantAttempts {
			t.Errorf("%s: %d flush attempts, want %d: %q", what, len(attempts), wantAttempts, attempts)
		}
	}

	update(readyEP(newPod.String()), readyEP(third.String()))
	sync("endpoint removed", 1)
	if d := ipvsDump(k); strings.Contains(d, oldPod.String()) {
		t.Errorf("the removed endpoint's real server is still there:\n%s", d)
	}
	// Unrelated work within the backoff (1 s) does not dump the table again,
	// the periodic full sync included.
	p.OnServiceAdd(svc("other", "10.96.0.7"))
	sync("unrelated change", 1)
	clock.step(900 * time.Millisecond)
	passSyncPeriod(p)
	sync("periodic full sync", 1)
	clock.step(100 * time.Millisecond)
	sync("retry after 1 s", 2)
	clock.step(time.Second)
	sync("within the second backoff (2 s)", 2)
	// A new flush goes at once, merged with the pending one.
	update(readyEP(third.String()))
	sync("second endpoint removed", 3)
	if got := attempts[2]; got != tcpFilter(oldPod)+"; "+tcpFilter(newPod) {
		t.Errorf("merged flush = %q, want both endpoints once each", got)
	}
	time.Sleep(healthTimeout + 50*time.Millisecond)
	if h := hs.Health(); !h.Healthy {
		t.Errorf("unhealthy while only conntrack flushes fail: %+v", h)
	}
	if n, err := testutil.GetCounterMetricValue(p.metrics.ConntrackFlushFailures); err != nil || n != 3 {
		t.Errorf("ipvsproxy_conntrack_flush_failures_total = %v (%v), want 3", n, err)
	}

	k.conntrack.Inject = func(op, object string) error {
		if op != "Dump" { // each attempt also dumps a family's table
			attempts = append(attempts, object)
		}
		return nil
	}
	clock.step(3 * time.Second)
	sync("within the third backoff (4 s)", 3)
	clock.step(time.Second)
	sync("retry after the fault cleared", 4)
	wantDump(t, "conntrack once the fault cleared", k.conntrack.Dump(), `
		tcp 10.244.9.9:40009 -> 10.96.0.99:80 reply from 10.244.1.1:8080`)
	clock.step(time.Minute)
	sync("nothing left to flush", 4)
}

// A flush that deletes entries and then fails (here every dump is
// interrupted, so each pass deletes half of what is left, until the retries
// run out) still counts the entries it deleted: the retry will not find
// them again.
func TestFailedConntrackFlushCountsWhatItDeleted(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	before := addImmediateWeb(t, p)
	for port := range uint16(8) {
		k.conntrack.Add(conntrack.Entry{Protocol: conntrack.ProtoTCP, OrigSrc: netip.MustParseAddr("10.244.9.9"), OrigSrcPort: 41000 + port,
			OrigDst: vip, OrigDstPort: 80, ReplySrc: oldPod, ReplySrcPort: 8080})
	}
	k.conntrack.Inject = func(op, object string) error {
		if op == "Dump" {
			return conntrack.ErrDumpInterrupted
		}
		return nil
	}
	entries := len(k.conntrack.Entries())
	after := slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String()))
	p.OnEndpointSliceUpdate(before, after)
	syncOK(t, p)
	if n, err := testutil.GetCounterMetricValue(p.metrics.ConntrackFlushFailures); err != nil || n != 1 {
		t.Fatalf("ipvsproxy_conntrack_flush_failures_total = %v (%v), want 1", n, err)
	}
	deleted := entries - len(k.conntrack.Entries())
	if n, err := testutil.GetCounterMetricValue(p.metrics.ConntrackEntriesDeleted); err != nil || int(n) != deleted || deleted == 0 {
		t.Errorf("ipvsproxy_conntrack_entries_deleted_total = %v (%v), want the %d entries the failed flush deleted", n, err, deleted)
	}
}

// trafficConntrack models clients that keep sending on their flows while
// the flush runs: a flushed flow whose virtual server still holds its real
// server in IPVS is re-created by the client's next packet, toward the old
// real server.
type trafficConntrack struct {
	*conntrack.Fake
	ipvs *ipvs.Fake
}

func (c trafficConntrack) Delete(filters []conntrack.Filter) (int, error) {
	before := c.Fake.Entries()
	n, err := c.Fake.Delete(filters)
	vss, _ := c.ipvs.List()
	routed := map[[2]netip.AddrPort]bool{}
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			routed[[2]netip.AddrPort{netip.AddrPortFrom(vs.Address, vs.Port), netip.AddrPortFrom(d.Address, d.Port)}] = true
		}
	}
	for _, e := range before {
		if routed[[2]netip.AddrPort{netip.AddrPortFrom(e.OrigDst, e.OrigDstPort), netip.AddrPortFrom(e.ReplySrc, e.ReplySrcPort)}] {
			c.Fake.Add(e)
		}
	}
	return n, err
}

// The flows of a deleted Service are flushed once its virtual server is
// gone: flushed before, a client's next packet re-creates them through the
// old real server.
func TestDeletedServiceFlowsStayFlushed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gate  bool
		proto v1.Protocol
		ct    uint8
	}{
		{"immediate TCP", true, v1.ProtocolTCP, conntrack.ProtoTCP},
		{"graceful UDP", false, v1.ProtocolUDP, conntrack.ProtoUDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			cfg := testConfig(v1.IPv4Protocol)
			cfg.ImmediateTermination = tc.gate
			p := newTestProxier(t, k, cfg)
			p.deps.Conntrack = trafficConntrack{k.conntrack, k.ipvs}
			web := svc("web", vip.String(), withProto(tc.proto))
			p.OnServiceAdd(web)
			s := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
			s.Ports[0].Protocol = ptr.To(tc.proto)
			p.OnEndpointSliceAdd(s)
			syncOK(t, p)
			flows(k, tc.ct)
			p.OnServiceDelete(web)
			syncOK(t, p)
			if d := ipvsDump(k); d != "" {
				t.Errorf("IPVS after the Service was deleted:\n%s", d)
			}
			wantDump(t, "conntrack", k.conntrack.Dump(), fmt.Sprintf(`
				%s 10.244.9.9:40009 -> 10.96.0.99:80 reply from 10.244.1.1:8080`, strings.ToLower(string(tc.proto))))
		})
	}
}

// A deleted Service's TCP flows are flushed by the policy the proxier last
// knew for it (its annotation), not by the gate alone, also when the same
// sync rebuilds the whole desired state (a topology change).
func TestDeletedServiceFlushFollowsItsLastPolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gate    bool
		policy  string
		flushed bool
	}{
		{"immediate annotation, gate off", false, PolicyImmediate, true},
		{"graceful annotation, gate on", true, PolicyGraceful, false},
		{"no annotation, gate on", true, "", true},
		{"no annotation, gate off", false, "", false},
	} {
		for _, rebuild := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rebuild=%v", tc.name, rebuild), func(t *testing.T) {
				k := newKernel(t)
				cfg := testConfig(v1.IPv4Protocol)
				cfg.ImmediateTermination = tc.gate
				p := newTestProxier(t, k, cfg)
				var mutate []func(*v1.Service)
				if tc.policy != "" {
					mutate = append(mutate, withAnnotation(TerminationPolicyAnnotation, tc.policy))
				}
				web := svc("web", vip.String(), mutate...)
				p.OnServiceAdd(web)
				p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String())))
				syncOK(t, p)
				flows(k, conntrack.ProtoTCP)
				before := k.conntrack.Dump()
				p.OnServiceDelete(web)
				if rebuild {
					p.OnTopologyChange(map[string]string{"topology.kubernetes.io/zone": "z2"})
				}
				syncOK(t, p)
				if d := ipvsDump(k); d != "" {
					t.Errorf("IPVS after the Service was deleted:\n%s", d)
				}
				want := before
				if tc.flushed {
					want = "tcp 10.244.9.9:40009 -> 10.96.0.99:80 reply from 10.244.1.1:8080"
				}
				wantDump(t, "conntrack", k.conntrack.Dump(), want)
				if len(p.desired.gone) != 0 {
					t.Errorf("policies of deleted virtual servers still kept: %v", p.desired.gone)
				}
			})
		}
	}
}

// A pending flush whose endpoint comes back to the Service before the
// retry is dropped: flushing it late would cut the endpoint's new flows.
func TestPendingFlushDroppedWhenTheEndpointReturns(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	clock := &stepClock{t: time.Now()}
	p.deps.Now = clock.now
	both := addImmediateWeb(t, p)
	flows(k, conntrack.ProtoTCP)
	k.conntrack.Inject = func(op, object string) error { return fmt.Errorf("injected fault on %s: %w", op, syscall.EIO) }
	one := slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String()))
	p.OnEndpointSliceUpdate(both, one)
	syncOK(t, p)
	k.conntrack.Inject = nil
	p.OnEndpointSliceUpdate(one, both) // the same pod IP is an endpoint again
	syncOK(t, p)
	clock.step(time.Minute)
	syncOK(t, p)
	if n := k.conntrack.Calls["Delete"]; n != 1 {
		t.Errorf("%d conntrack flushes, want only the failed one", n)
	}
	if got := k.conntrack.Dump(); !strings.Contains(got, "-> 10.96.0.1:80 reply from "+oldPod.String()+":8080") {
		t.Errorf("the returned endpoint's flows were flushed:\n%s", got)
	}
}

// In the running proxier a timer runs the retry of a failed flush: no
// other sync may come for a whole syncPeriod.
func TestFailedConntrackFlushRetriedByATimer(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	both := addImmediateWeb(t, p)
	flows(k, conntrack.ProtoTCP)
	var failing atomic.Bool
	failing.Store(true)
	k.conntrack.Inject = func(op, object string) error {
		if failing.Load() {
			return fmt.Errorf("injected fault on %s: %w", op, syscall.EIO)
		}
		return nil
	}
	stop := make(chan struct{})
	p.looping.Store(true)
	go p.runLoop(stop)
	t.Cleanup(func() {
		p.mu.Lock()
		for _, timer := range []*time.Timer{p.flushTimer, p.fullSyncTimer} {
			if timer != nil {
				timer.Stop()
			}
		}
		p.mu.Unlock()
		close(stop) // closes the runner's channel: no timer may run it after
	})
	p.OnEndpointSliceUpdate(both, slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String())))
	syncOK(t, p)
	failing.Store(false)
	flushed := func() bool {
		return !strings.Contains(k.conntrack.Dump(), "-> 10.96.0.1:80 reply from "+oldPod.String())
	}
	for deadline := time.Now().Add(3 * time.Second); !flushed() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !flushed() {
		t.Errorf("the failed flush was not retried within 3 s:\n%s", k.conntrack.Dump())
	}
}

// A partial sync whose writes fail has built its changes into the desired
// state already: the next (full) sync applies them (a regression guard:
// this already held).
func TestChangesOfAPartialSyncWithFailedWritesAreApplied(t *testing.T) {
	for _, op := range []string{"AddService", "DeleteService", "UpdateDestination", "AddAddress", "DeleteAddress", "AddEntry", "DeleteEntry"} {
		t.Run(op, func(t *testing.T) {
			f := newFaultCluster(t)
			k, p := f.k, f.p
			p.OnServiceDelete(svc("b", "10.96.0.2"))
			p.OnServiceAdd(svc("new", "10.96.0.9"))
			c2 := f.c.DeepCopy()
			c2.Endpoints = c2.Endpoints[1:]
			p.OnEndpointSliceUpdate(f.c, c2)
			f.failOnce(op)
			if err := p.syncProxyRules(); err == nil {
				t.Fatalf("partial sync succeeded with %s failing", op)
			}
			f.clearFaults()
			syncOK(t, p)
			d := k.ipvs.Dump()
			for _, want := range []string{"TCP 10.96.0.9:80 rr", "-> 10.244.3.1:8080 weight=0"} {
				if !strings.Contains(d, want) {
					t.Errorf("after a failing %s the next sync lacks %q:\n%s", op, want, d)
				}
			}
			if strings.Contains(d, "10.96.0.2:80") {
				t.Errorf("after a failing %s the deleted Service is still there:\n%s", op, d)
			}
			if s := k.ipset.Dump(); !strings.Contains(s, "10.96.0.9,tcp:80") {
				t.Errorf("after a failing %s the new Service is not in the sets:\n%s", op, s)
			}
		})
	}
}

// TestSyncRequestsAfterTheLoopEndsAreDropped: the runner closes its channel
// when its loop ends, and a Run after that panics ("send on closed
// channel"). Timers armed by earlier syncs, the audit and event handlers
// may still ask for a sync then, also while the loop is ending.
func TestSyncRequestsAfterTheLoopEndsAreDropped(t *testing.T) {
	for range 20 {
		p := newTestProxier(t, newKernel(t), testConfig(v1.IPv4Protocol))
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { defer close(done); p.runLoop(stop) }()
		var askers sync.WaitGroup
		for range 4 {
			askers.Add(1)
			go func() {
				defer askers.Done()
				for range 200 {
					p.requestSync()
				}
			}()
		}
		close(stop)
		<-done
		p.Sync()
		time.AfterFunc(0, p.requestSync)
		askers.Wait()
	}
}

// addImmediateWeb adds Service web (immediate termination by annotation) with the old
// and the new pod ready, syncs, and returns its slice.
func addImmediateWeb(t *testing.T, p *Proxier) *discovery.EndpointSlice {
	t.Helper()
	p.OnServiceAdd(svc("web", vip.String(), withAnnotation(TerminationPolicyAnnotation, PolicyImmediate)))
	s := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()), readyEP(newPod.String()))
	p.OnEndpointSliceAdd(s)
	syncOK(t, p)
	return s
}
