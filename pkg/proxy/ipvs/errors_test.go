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
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"

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

type faultyIPVS struct {
	ipvs.Interface
	r *readFaults
}

func (f faultyIPVS) ListFamily(ipv6 bool) ([]ipvs.VirtualServer, error) {
	if err := f.r.err("ListFamily"); err != nil {
		return nil, err
	}
	return f.Interface.ListFamily(ipv6)
}

type faultyNetDev struct {
	netdev.Interface
	r *readFaults
}

func (f faultyNetDev) Addresses(name string) ([]netip.Addr, error) {
	if err := f.r.err("Addresses"); err != nil {
		return nil, err
	}
	return f.Interface.Addresses(name)
}

func (f faultyNetDev) LocalAddresses(exclude ...string) ([]netip.Addr, error) {
	if err := f.r.err("LocalAddresses"); err != nil {
		return nil, err
	}
	return f.Interface.LocalAddresses(exclude...)
}

type faultyIPSet struct {
	ipset.Interface
	r *readFaults
}

func (f faultyIPSet) List() ([]ipset.Contents, error) {
	if err := f.r.err("List"); err != nil {
		return nil, err
	}
	return f.Interface.List()
}

// newReadFaultProxier is newTestProxier with the kernel reads wrapped.
func newReadFaultProxier(t *testing.T, k *kernel) (*Proxier, *readFaults) {
	t.Helper()
	r := &readFaults{}
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.deps.IPVS = faultyIPVS{k.ipvs, r}
	p.deps.NetDev = faultyNetDev{k.netdev, r}
	p.deps.IPSet = faultyIPSet{k.ipset, r}
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
			r.fail = ""
			syncOK(t, p)
			want := `
				TCP 10.96.0.1:80 rr flags=0x2 timeout=0
				  -> 10.244.1.2:8080 weight=1 active=0 inactive=0
				TCP 10.96.0.3:80 rr flags=0x2 timeout=0`
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
