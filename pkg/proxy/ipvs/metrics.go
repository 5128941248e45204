package ipvs

import (
	"k8s.io/component-base/metrics"
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
	}
}

// Register adds the metrics to a registry (legacyregistry in the binary).
func (m *Metrics) Register(r interface{ MustRegister(...metrics.Registerable) }) {
	r.MustRegister(m.RealServersDeleted, m.ConntrackEntriesDeleted, m.ConntrackFlushFailures, m.SyncsTotal)
}
