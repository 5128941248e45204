//go:build integration

package ipvs

import (
	"bytes"
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// The read-back of a partial write compares the chains it reads with the
// payload written by chainShape; on the real iptables-save, which prints
// matches its own way, a table we wrote and nobody touched must match, or
// no partial write would ever be recorded and every full sync after one
// would rewrite under the lock again.
func TestKernelPartialRuleWriteIsRecorded(t *testing.T) {
	nettest.EnterNewNetns(t)
	// The real iptables and ipset (the rules match sets); IPVS may be
	// missing on the host and plays no part here.
	k := newKernel(t)
	deps := k.deps(v1.IPv4Protocol)
	deps.IPTables, deps.IPSet, deps.Metrics = iptables.New(false), ipset.New(), NewMetrics()
	cfg := testConfig(v1.IPv4Protocol)
	p, err := NewProxier(context.Background(), cfg, deps)
	must(t, err)
	t.Cleanup(func() { _ = CleanupLeftovers(context.Background(), deps) })
	p.servicesSynced, p.endpointSlicesSynced = true, true
	p.initialized.Store(true)
	p.looping.Store(true)
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.fullSyncTimer != nil {
			p.fullSyncTimer.Stop()
		}
	})
	// Background goroutines would run on other threads, outside this
	// test's network namespace: the audit is held, the read-back is run
	// here.
	p.audit.running.Store(true)
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	p.OnEndpointSliceAdd(slice("a", discovery.AddressTypeIPv4, localEP("10.244.0.10")))
	syncOK(t, p)
	if len(p.savedRules) != 2 {
		t.Fatalf("the first full sync recorded %d tables, want 2", len(p.savedRules))
	}
	// Every kind of rule we write: node ports of each local/cluster kind,
	// a load balancer with source ranges, external IPs.
	p.OnServiceAdd(webService())
	p.OnServiceAdd(svc("udp-local", "10.96.0.11", withProto(v1.ProtocolUDP), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30081
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}))
	p.OnServiceAdd(svc("lb", "10.96.0.12", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30082
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 31000
		s.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16"} // the node in range: no -m ipvs rule (no ip_vs on the host)
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.5"}}
	}))
	p.OnServiceAdd(svc("ext", "10.96.0.13", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.6"} }))
	p.OnServiceAdd(svc("ext-local", "10.96.0.14", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30083
		s.Spec.ExternalIPs = []string{"198.51.100.7"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}))
	for _, name := range []string{"web", "udp-local", "lb", "ext", "ext-local"} {
		p.OnEndpointSliceAdd(slice(name, discovery.AddressTypeIPv4, localEP("10.244.0.10")))
	}
	p.mu.Lock()
	lastFull, nat, filter := p.lastFullSync, p.lastNAT, p.lastFilter
	p.audit.recording = true
	p.mu.Unlock()
	syncOK(t, p) // partial: both tables rewritten, jumps not checked
	p.recordInBackground()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastFullSync != lastFull || bytes.Equal(nat, p.lastNAT) || bytes.Equal(filter, p.lastFilter) {
		t.Fatalf("the second sync was expected to be partial and to rewrite both tables: full %v, nat same %v, filter same %v", p.lastFullSync != lastFull, bytes.Equal(nat, p.lastNAT), bytes.Equal(filter, p.lastFilter))
	}
	for table, written := range map[string][]byte{iptables.TableNAT: p.lastNAT, iptables.TableFilter: p.lastFilter} {
		if _, recorded := p.savedRules[table]; recorded {
			t.Logf("%s recorded; shape:\n%s", table, chainShape(written, table))
			continue
		}
		saved, err := p.deps.IPTables.Save(table)
		must(t, err)
		t.Errorf("%s: the read-back of a partial write was not recorded; shape read:\n%s\nwritten:\n%s",
			table, chainShape(ourRules(saved, tableChains(table)), table), chainShape(written, table))
	}
}
