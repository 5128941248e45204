package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// faultCluster drives a proxier through two states whose transition needs
// every kind of kernel write: before() is programmed cleanly, after() is
// the state a faulty sync must still reach.
type faultCluster struct {
	t *testing.T
	k *kernel
	p *Proxier
	a *discovery.EndpointSlice
	c *discovery.EndpointSlice
}

func newFaultCluster(t *testing.T) *faultCluster {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	f := &faultCluster{t: t, k: k, p: newTestProxier(t, k, cfg)}
	f.p.OnServiceAdd(svc("a", "10.96.0.1", withAnnotation(TerminationPolicyAnnotation, PolicyImmediate), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30001
	}))
	f.p.OnServiceAdd(svc("b", "10.96.0.2"))
	f.p.OnServiceAdd(svc("c", "10.96.0.3"))
	f.a = slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("10.244.1.2"))
	f.c = slice("c", discovery.AddressTypeIPv4, readyEP("10.244.3.1"), readyEP("10.244.3.2"))
	f.p.OnEndpointSliceAdd(f.a)
	f.p.OnEndpointSliceAdd(slice("b", discovery.AddressTypeIPv4, readyEP("10.244.2.1")))
	f.p.OnEndpointSliceAdd(f.c)
	syncOK(t, f.p)
	k.conntrack.Add(conntrack.Entry{Protocol: conntrack.ProtoTCP, OrigSrc: netip.MustParseAddr("10.244.9.9"), OrigSrcPort: 40000,
		OrigDst: netip.MustParseAddr("10.96.0.1"), OrigDstPort: 80, ReplySrc: netip.MustParseAddr("10.244.1.1"), ReplySrcPort: 8080})
	cKey := ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.3"), Protocol: ipvs.TCP, Port: 80}
	must(t, k.ipvs.SetConnections(cKey, ipvs.DestinationKey{Address: netip.MustParseAddr("10.244.3.1"), Port: 8080}, 1, 0))
	return f
}

// change makes every kind of write necessary: a real server deleted with
// its flows (a), a service deleted and its address unbound (b), a real
// server parked at weight 0 (c), a virtual server's options changed (a),
// a new service with a new address, set members and rules (d), plus drift
// that only a full sync repairs (a destroyed set, a flushed chain jump, a
// changed sysctl).
func (f *faultCluster) change() {
	t, p, k := f.t, f.p, f.k
	a2 := f.a.DeepCopy()
	a2.Endpoints = a2.Endpoints[1:]
	p.OnEndpointSliceUpdate(f.a, a2)
	p.OnServiceDelete(svc("b", "10.96.0.2"))
	c2 := f.c.DeepCopy()
	c2.Endpoints = c2.Endpoints[1:]
	p.OnEndpointSliceUpdate(f.c, c2)
	p.OnServiceUpdate(nil, svc("a", "10.96.0.1", withAnnotation(TerminationPolicyAnnotation, PolicyImmediate), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30001
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
	}))
	p.OnServiceAdd(svc("d", "10.96.0.4", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30004
		s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.4"}}
	}))
	p.OnEndpointSliceAdd(slice("d", discovery.AddressTypeIPv4, readyEP("10.244.4.1")))
	must(t, k.ipset.DestroySet(setLBSourceIP))
	must(t, k.ipt4.DeleteJump("nat", "OUTPUT", chainServices, "-m", "comment", "--comment", "kubernetes service portals"))
	must(t, k.sysctl.Set(sysctlExpireNodestConn, 0))
	passSyncPeriod(p)
}

func (f *faultCluster) dump() string {
	k := f.k
	return strings.Join([]string{k.ipvs.Dump(), k.ipset.Dump(), k.netdev.Dump(), k.ipt4.Dump(), k.conntrack.Dump(), k.sysctl.Dump()}, "\n---\n")
}

// failOnce makes the first call of op on any fake fail.
func (f *faultCluster) failOnce(op string) *bool {
	hit := new(bool)
	inject := func(o, object string) error {
		if o == op && !*hit {
			*hit = true
			return fmt.Errorf("injected fault on %s: %w", object, syscall.EIO)
		}
		return nil
	}
	k := f.k
	k.ipvs.Inject, k.ipset.Inject, k.netdev.Inject, k.ipt4.Inject, k.conntrack.Inject, k.sysctl.Inject = inject, inject, inject, inject, inject, inject
	return hit
}

func (f *faultCluster) clearFaults() {
	k := f.k
	k.ipvs.Inject, k.ipset.Inject, k.netdev.Inject, k.ipt4.Inject, k.conntrack.Inject, k.sysctl.Inject = nil, nil, nil, nil, nil, nil
}

// TestFaultOnEveryKernelOperationKind fails each kind of kernel write once,
// in the middle of a sync that needs all of them, and checks that the
// failure is reported, that what the failed write did not touch is still
// programmed, and that the next sync converges to exactly the state a
// fault-free run reaches.
func TestFaultOnEveryKernelOperationKind(t *testing.T) {
	ref := newFaultCluster(t)
	ref.change()
	syncOK(t, ref.p)
	want := ref.dump()

	for _, op := range []string{
		"AddService", "UpdateService", "DeleteService", "AddDestination", "UpdateDestination", "DeleteDestination",
		"AddAddress", "DeleteAddress", "EnsureDummy", "CreateSet", "AddEntry", "DeleteEntry",
		"Restore", "EnsureJump", "Delete", "Set",
	} {
		t.Run(op, func(t *testing.T) {
			f := newFaultCluster(t)
			f.change()
			hit := f.failOnce(op)
			err := f.p.syncProxyRules()
			if !*hit {
				t.Fatalf("the sync never called %s: the scenario does not cover it", op)
			}
			switch {
			case op == "Delete":
				// A failed conntrack flush is retried after a backoff and
				// does not fail the sync (TestFailedConntrackFlushIsRetriedWithoutFailingSyncs).
				if err != nil {
					t.Fatalf("sync with a failing conntrack flush returned %v, want success", err)
				}
				f.p.deps.Now = func() time.Time { return time.Now().Add(time.Minute) }
			case !errors.Is(err, syscall.EIO):
				t.Fatalf("sync with a failing %s returned %v, want the injected EIO", op, err)
			}
			// Service c's ready endpoint is untouched by any fault.
			if d := f.k.ipvs.Dump(); !strings.Contains(d, "TCP 10.96.0.3:80 rr") || !strings.Contains(d, "-> 10.244.3.2:8080 weight=1") {
				t.Errorf("untouched service c lost its programming after a failing %s:\n%s", op, d)
			}
			f.clearFaults()
			syncOK(t, f.p)
			if got := f.dump(); got != want {
				t.Errorf("after a failing %s the next sync did not converge:\n--- got\n%s\n--- want\n%s", op, got, want)
			}
		})
	}
}
