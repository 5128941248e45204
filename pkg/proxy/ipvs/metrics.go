package ipvs

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
)

// Metrics are ipvs-proxy's own counters, beside upstream's kubeproxy_* ones
// (k8s.io/kubernetes/pkg/proxy/metrics), which the proxier also updates.
type Metrics struct {
	// RealServersDeleted counts real servers deleted, by reason:
	// "immediate" (policy), "drained" (graceful, no connections left),
	// "udp" (graceful policy deletes UDP/SCTP at once), "stale" (left over).
	RealServersDeleted *metrics.CounterVec
	// ConntrackEntriesDeleted counts conntrack entries flushed for removed endpoints.
	ConntrackEntriesDeleted *metrics.Counter
	// ConntrackFlushFailures counts failed conntrack flushes (their filters
	// stay pending and are retried with backoff; the sync still succeeds).
	ConntrackFlushFailures *metrics.Counter
	// SyncsTotal counts syncs by kind ("full" or "partial") and result.
	SyncsTotal *metrics.CounterVec
	// RealServersWeightZero is the number of real servers at weight 0 in
	// the IPVS table now (draining, finishing or left over), per family.
	RealServersWeightZero *metrics.GaugeVec
	// RealServersFinishing is the number of real servers kept now while
	// requests in flight finish (FinishGrace), per family.
	RealServersFinishing *metrics.GaugeVec
}

// NewMetrics creates the metrics; register them with Register.
func NewMetrics() *Metrics {
	return &Metrics{
		RealServersDeleted: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem:      "ipvsproxy",
			Name:           "real_servers_deleted_total",
			Help:           "Real servers deleted from IPVS, by reason (immediate, drained, udp, stale).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"reason"}),
		ConntrackEntriesDeleted: metrics.NewCounter(&metrics.CounterOpts{
			Subsystem:      "ipvsproxy",
			Name:           "conntrack_entries_deleted_total",
			Help:           "Conntrack entries deleted for endpoints removed from a service.",
			StabilityLevel: metrics.ALPHA,
		}),
		ConntrackFlushFailures: metrics.NewCounter(&metrics.CounterOpts{
			Subsystem:      "ipvsproxy",
			Name:           "conntrack_flush_failures_total",
			Help:           "Conntrack flushes for removed endpoints that failed; they are retried with backoff without failing the sync.",
			StabilityLevel: metrics.ALPHA,
		}),
		SyncsTotal: metrics.NewCounterVec(&metrics.CounterOpts{
			Subsystem:      "ipvsproxy",
			Name:           "syncs_total",
			Help:           "Proxier syncs by kind (full, partial) and result (success, error).",
			StabilityLevel: metrics.ALPHA,
		}, []string{"kind", "result"}),
		RealServersWeightZero: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Subsystem:      "ipvsproxy",
			Name:           "real_servers_weight_zero",
			Help:           "Real servers at weight 0 in the IPVS table now (draining, finishing in-flight requests, or left over by an earlier run), as of the last sync or finish check.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"ip_family"}),
		RealServersFinishing: metrics.NewGaugeVec(&metrics.GaugeOpts{
			Subsystem:      "ipvsproxy",
			Name:           "real_servers_finishing",
			Help:           "Real servers of endpoints going away that are kept while requests in flight finish (at most FinishGrace), now.",
			StabilityLevel: metrics.ALPHA,
		}, []string{"ip_family"}),
	}
}

// initFamily creates the family's gauge series at 0.
func (m *Metrics) initFamily(family v1.IPFamily) {
	m.RealServersWeightZero.WithLabelValues(string(family)).Set(0)
	m.RealServersFinishing.WithLabelValues(string(family)).Set(0)
}

// Register adds the metrics to a registry (legacyregistry in the binary).
func (m *Metrics) Register(r interface{ MustRegister(...metrics.Registerable) }) {
	r.MustRegister(m.RealServersDeleted, m.ConntrackEntriesDeleted, m.ConntrackFlushFailures, m.SyncsTotal,
		m.RealServersWeightZero, m.RealServersFinishing)
	// Every series at 0 from the start (vectors show no series before
	// their first value otherwise, and increase() misses the first one).
	for _, reason := range []string{reasonImmediate, reasonDrained, reasonNotTCP, reasonStale} {
		m.RealServersDeleted.WithLabelValues(reason)
	}
	for _, kind := range []string{"full", "partial"} {
		for _, result := range []string{"success", "error"} {
			m.SyncsTotal.WithLabelValues(kind, result)
		}
	}
}

var registerSyncKindsOnce sync.Once

// RegisterUpstreamMetrics registers upstream's kubeproxy_* metrics in the
// legacy registry as kube-proxy does in IPVS mode, plus the full and partial
// sync durations: upstream registers those only for the iptables and
// nftables modes (its IPVS proxier has no partial syncs), ours observes them.
// Safe to call more than once (upstream's part runs once too).
func RegisterUpstreamMetrics() {
	proxymetrics.RegisterMetrics(kubeproxyconfig.ProxyModeIPVS)
	registerSyncKindsOnce.Do(func() {
		legacyregistry.MustRegister(proxymetrics.SyncFullProxyRulesLatency, proxymetrics.SyncPartialProxyRulesLatency)
	})
}

// Label values of the upstream metrics the proxier sets.
const (
	trafficPolicyInternal = "internal"
	trafficPolicyExternal = "external"
)

// initFamilyMetrics creates the family's series of the upstream metrics
// that only move on an event (a failure, a flush, a Local Service without
// local endpoints, an EndpointSlice change with a trigger time), at 0: scrapes then list them from the start, and
// rate() and absent() alerts work before the first event.
func initFamilyMetrics(family v1.IPFamily) {
	f := string(family)
	proxymetrics.IPTablesRestoreFailuresTotal.WithLabelValues(f)
	proxymetrics.NetworkProgrammingLatency.WithLabelValues(f)
	proxymetrics.ReconcileConntrackFlowsLatency.WithLabelValues(f)
	proxymetrics.ReconcileConntrackFlowsDeletedEntriesTotal.WithLabelValues(f)
	proxymetrics.SyncFullProxyRulesLatency.WithLabelValues(f)
	proxymetrics.SyncPartialProxyRulesLatency.WithLabelValues(f)
	for _, policy := range []string{trafficPolicyInternal, trafficPolicyExternal} {
		proxymetrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(policy, f).Set(0)
	}
}
