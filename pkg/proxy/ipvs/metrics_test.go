package ipvs

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
)

// upstreamReading is what upstream's IPVS-mode metrics (and the full and
// partial sync durations) say for IPv4. They are package globals shared by
// every test of the package, so a test compares readings taken before and
// after an event.
type upstreamReading struct {
	syncs, fullSyncs, partialSyncs, programmed, reconciles uint64
	lastSync, lastQueued                                   float64
	endpointChanges, serviceChanges                        float64
	noLocalInternal, noLocalExternal                       float64
	restoreFailures, conntrackDeleted                      float64
}

func readUpstream(t *testing.T) upstreamReading {
	t.Helper()
	RegisterUpstreamMetrics() // unregistered metrics do not count
	const f = string(v1.IPv4Protocol)
	var r upstreamReading
	var errs []error
	count := func(dst *uint64, m metrics.ObserverMetric) {
		n, err := testutil.GetHistogramMetricCount(m)
		*dst, errs = n, append(errs, err)
	}
	gauge := func(dst *float64, m metrics.GaugeMetric) {
		v, err := testutil.GetGaugeMetricValue(m)
		*dst, errs = v, append(errs, err)
	}
	counter := func(dst *float64, m metrics.CounterMetric) {
		v, err := testutil.GetCounterMetricValue(m)
		*dst, errs = v, append(errs, err)
	}
	count(&r.syncs, proxymetrics.SyncProxyRulesLatency.WithLabelValues(f))
	count(&r.fullSyncs, proxymetrics.SyncFullProxyRulesLatency.WithLabelValues(f))
	count(&r.partialSyncs, proxymetrics.SyncPartialProxyRulesLatency.WithLabelValues(f))
	count(&r.programmed, proxymetrics.NetworkProgrammingLatency.WithLabelValues(f))
	count(&r.reconciles, proxymetrics.ReconcileConntrackFlowsLatency.WithLabelValues(f))
	gauge(&r.lastSync, proxymetrics.SyncProxyRulesLastTimestamp.WithLabelValues(f))
	gauge(&r.lastQueued, proxymetrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(f))
	gauge(&r.noLocalInternal, proxymetrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(trafficPolicyInternal, f))
	gauge(&r.noLocalExternal, proxymetrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(trafficPolicyExternal, f))
	counter(&r.endpointChanges, proxymetrics.EndpointChangesTotal)
	counter(&r.serviceChanges, proxymetrics.ServiceChangesTotal)
	counter(&r.restoreFailures, proxymetrics.IPTablesRestoreFailuresTotal.WithLabelValues(f))
	counter(&r.conntrackDeleted, proxymetrics.ReconcileConntrackFlowsDeletedEntriesTotal.WithLabelValues(f))
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return r
}

func TestSyncMetricsMove(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	before := readUpstream(t)
	p.OnServiceAdd(svc("web", "10.96.0.1"))
	syncOK(t, p) // the first sync is full
	afterFull := readUpstream(t)
	if afterFull.syncs != before.syncs+1 || afterFull.fullSyncs != before.fullSyncs+1 || afterFull.partialSyncs != before.partialSyncs {
		t.Errorf("after a full sync: syncs %d->%d, full %d->%d, partial %d->%d; want +1, +1, +0",
			before.syncs, afterFull.syncs, before.fullSyncs, afterFull.fullSyncs, before.partialSyncs, afterFull.partialSyncs)
	}
	if afterFull.lastSync < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last_timestamp_seconds = %v, want about now", afterFull.lastSync)
	}
	if afterFull.serviceChanges != before.serviceChanges+1 {
		t.Errorf("service_changes_total %v -> %v, want +1", before.serviceChanges, afterFull.serviceChanges)
	}
	p.OnServiceAdd(svc("other", "10.96.0.2"))
	syncOK(t, p)
	afterPartial := readUpstream(t)
	if afterPartial.syncs != afterFull.syncs+1 || afterPartial.partialSyncs != afterFull.partialSyncs+1 || afterPartial.fullSyncs != afterFull.fullSyncs {
		t.Errorf("after a partial sync: syncs %d->%d, full %d->%d, partial %d->%d; want +1, +0, +1",
			afterFull.syncs, afterPartial.syncs, afterFull.fullSyncs, afterPartial.fullSyncs, afterFull.partialSyncs, afterPartial.partialSyncs)
	}
}

func TestEndpointChangeMetricsMove(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("web", "10.96.0.1"))
	syncOK(t, p)
	before := readUpstream(t)
	s := slice("web", discovery.AddressTypeIPv4, readyEP("10.244.1.1"))
	s.Annotations = map[string]string{v1.EndpointsLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}
	p.OnEndpointSliceAdd(s)
	syncOK(t, p)
	after := readUpstream(t)
	if after.endpointChanges != before.endpointChanges+1 {
		t.Errorf("endpoint_changes_total %v -> %v, want +1", before.endpointChanges, after.endpointChanges)
	}
	if after.programmed != before.programmed+1 {
		t.Errorf("network_programming_duration_seconds count %d -> %d, want +1", before.programmed, after.programmed)
	}
}

// TestNoLocalEndpointsGauge: upstream's gauge counts the Services whose
// Local policy finds no endpoint on this node while the cluster has some
// (a Service with two such ports counts once), per policy.
func TestNoLocalEndpointsGauge(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	internalLocal := func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		s.Spec.Ports = append(s.Spec.Ports, v1.ServicePort{Name: "dns", Protocol: v1.ProtocolUDP, Port: 53})
	}
	externalLocal := func(s *v1.Service) {
		s.Spec.Type, s.Spec.Ports[0].NodePort = v1.ServiceTypeNodePort, 30080
		s.Spec.ExternalTrafficPolicy, s.Spec.HealthCheckNodePort = v1.ServiceExternalTrafficPolicyLocal, 30081
	}
	remoteOnly := func(name string) *discovery.EndpointSlice {
		s := slice(name, discovery.AddressTypeIPv4, readyEP("10.244.1.1"))
		s.Ports = append(s.Ports, discovery.EndpointPort{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: ptr.To(v1.ProtocolUDP)})
		return s
	}
	p.OnServiceAdd(svc("itp", "10.96.0.1", internalLocal))
	p.OnServiceAdd(svc("etp", "10.96.0.2", externalLocal))
	p.OnServiceAdd(svc("none", "10.96.0.3", externalLocal)) // no endpoints anywhere: not counted
	p.OnServiceAdd(svc("cluster", "10.96.0.4"))             // no Local policy: not counted
	p.OnEndpointSliceAdd(remoteOnly("itp"))
	p.OnEndpointSliceAdd(remoteOnly("etp"))
	p.OnEndpointSliceAdd(remoteOnly("cluster"))
	syncOK(t, p)
	if r := readUpstream(t); r.noLocalInternal != 1 || r.noLocalExternal != 1 {
		t.Errorf("no_local_endpoints_total internal=%v external=%v, want 1 and 1", r.noLocalInternal, r.noLocalExternal)
	}
	s := remoteOnly("etp")
	s.Endpoints = append(s.Endpoints, slice("etp", discovery.AddressTypeIPv4, localEP("10.244.0.5")).Endpoints...)
	p.OnEndpointSliceUpdate(nil, s) // a partial sync
	syncOK(t, p)
	if r := readUpstream(t); r.noLocalInternal != 1 || r.noLocalExternal != 0 {
		t.Errorf("after a local endpoint for etp: internal=%v external=%v, want 1 and 0", r.noLocalInternal, r.noLocalExternal)
	}
	p.OnServiceDelete(svc("itp", "10.96.0.1", internalLocal))
	syncOK(t, p)
	if r := readUpstream(t); r.noLocalInternal != 0 || r.noLocalExternal != 0 {
		t.Errorf("after itp's deletion: internal=%v external=%v, want 0 and 0", r.noLocalInternal, r.noLocalExternal)
	}
}

func TestIPTablesRestoreFailuresCounted(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	syncOK(t, p)
	before := readUpstream(t)
	k.ipt4.Inject = func(op, object string) error {
		if op == "Restore" {
			return syscall.EIO
		}
		return nil
	}
	p.OnServiceAdd(svc("web", "10.96.0.1", func(s *v1.Service) { // new rules: a restore
		s.Spec.Type, s.Spec.Ports[0].NodePort = v1.ServiceTypeNodePort, 30080
	}))
	if err := p.syncProxyRules(); err == nil {
		t.Fatal("sync with a failing iptables-restore succeeded")
	}
	if after := readUpstream(t); after.restoreFailures <= before.restoreFailures {
		t.Errorf("iptables_restore_failures_total %v -> %v, want more", before.restoreFailures, after.restoreFailures)
	}
	k.ipt4.Inject = nil
	syncOK(t, p)
}

func TestConntrackReconcilerMetricsMove(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = true
	p := newTestProxier(t, k, cfg)
	p.OnServiceAdd(svc("web", "10.96.0.1"))
	s := slice("web", discovery.AddressTypeIPv4, readyEP("10.244.1.1"), readyEP("10.244.1.2"))
	p.OnEndpointSliceAdd(s)
	syncOK(t, p)
	k.conntrack.Add(conntrack.Entry{Protocol: conntrack.ProtoTCP, OrigSrc: netip.MustParseAddr("10.244.9.9"), OrigSrcPort: 40000,
		OrigDst: netip.MustParseAddr("10.96.0.1"), OrigDstPort: 80, ReplySrc: netip.MustParseAddr("10.244.1.1"), ReplySrcPort: 8080})
	before := readUpstream(t)
	p.OnEndpointSliceUpdate(nil, slice("web", discovery.AddressTypeIPv4, readyEP("10.244.1.2")))
	syncOK(t, p)
	after := readUpstream(t)
	if after.reconciles != before.reconciles+1 || after.conntrackDeleted != before.conntrackDeleted+1 {
		t.Errorf("conntrack_reconciler_sync_duration_seconds count %d -> %d, deleted_entries_total %v -> %v; want +1, +1",
			before.reconciles, after.reconciles, before.conntrackDeleted, after.conntrackDeleted)
	}
	if d := k.conntrack.Dump(); d != "" {
		t.Errorf("conntrack still holds:\n%s", d)
	}
}
