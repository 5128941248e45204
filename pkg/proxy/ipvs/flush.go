package ipvs

import (
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// flushBackoffMin is the first wait before a failed conntrack flush is
// retried; it doubles with each failure, up to syncPeriod.
const flushBackoffMin = time.Second

// pendingFlushes are the conntrack filters whose flush failed. Their real
// servers are gone, so no later plan names them again: they are retried
// with backoff until a flush succeeds. A failed flush does not fail the
// sync: the IPVS state is right, and failing would make every retry a
// full sync plus a dump of the whole conntrack table, and /healthz
// unhealthy after 2 x syncPeriod.
type pendingFlushes struct {
	filters []conntrack.Filter
	backoff time.Duration
	retryAt time.Time
}

// take returns the filters to flush now: the fresh ones together with the
// pending ones (the table is dumped once either way), or the pending ones
// alone once their backoff has passed; nil when there is nothing to do.
func (f *pendingFlushes) take(fresh []conntrack.Filter, now time.Time) []conntrack.Filter {
	if len(fresh) == 0 && (len(f.filters) == 0 || now.Before(f.retryAt)) {
		return nil
	}
	return mergeFilters(f.filters, fresh)
}

// failed keeps filters pending and returns how long to wait before the
// next try: flushBackoffMin, doubling up to limit.
func (f *pendingFlushes) failed(filters []conntrack.Filter, now time.Time, limit time.Duration) time.Duration {
	f.filters = filters
	f.backoff = min(max(2*f.backoff, flushBackoffMin), max(limit, flushBackoffMin))
	f.retryAt = now.Add(f.backoff)
	return f.backoff
}

func (f *pendingFlushes) done() { *f = pendingFlushes{} }

// dropWanted forgets the pending filters whose real server is wanted
// again (the pod IP came back to the Service): a late flush would cut its
// new flows.
func (f *pendingFlushes) dropWanted(d *desiredState) {
	if len(f.filters) == 0 {
		return
	}
	f.filters = slices.DeleteFunc(f.filters, func(c conntrack.Filter) bool {
		ws := d.service(ipvs.ServiceKey{Address: c.OrigDst, Protocol: ipvsProtocol(c.Protocol), Port: c.OrigDstPort})
		return ws != nil && ws.dests.has(ipvs.DestinationKey{Address: c.ReplySrc, Port: c.ReplySrcPort})
	})
	if len(f.filters) == 0 {
		f.done()
	}
}

// ipvsProtocol is the inverse of protoNumber.
func ipvsProtocol(p uint8) ipvs.Protocol {
	switch p {
	case conntrack.ProtoUDP:
		return ipvs.UDP
	case conntrack.ProtoSCTP:
		return ipvs.SCTP
	default:
		return ipvs.TCP
	}
}

// mergeFilters appends the fresh filters not already pending (a real
// server whose deletion failed is planned again) to the pending ones.
func mergeFilters(pending, fresh []conntrack.Filter) []conntrack.Filter {
	if len(pending) == 0 {
		return fresh
	}
	seen := make(map[conntrack.Filter]struct{}, len(pending)+len(fresh))
	out := make([]conntrack.Filter, 0, len(pending)+len(fresh))
	for _, list := range [][]conntrack.Filter{pending, fresh} {
		for _, f := range list {
			if _, dup := seen[f]; !dup {
				seen[f] = struct{}{}
				out = append(out, f)
			}
		}
	}
	return out
}

// settleFlush records how the sync's conntrack flush went: a failure is
// logged, counted and kept for a retry, which a timer runs (partial
// syncs may not come for a whole period).
func (p *Proxier) settleFlush(filters []conntrack.Filter, err error, now time.Time) {
	switch {
	case len(filters) == 0:
		return
	case err == nil:
		p.flushes.done()
		return
	}
	wait := p.flushes.failed(filters, now, p.cfg.SyncPeriod)
	p.metrics.ConntrackFlushFailures.Inc()
	p.logger.Error(err, "Conntrack flush for removed endpoints failed; will retry", "filters", len(filters), "retryIn", wait)
	if !p.looping.Load() {
		return // syncs driven by hand (tests, benchmarks) retry by hand
	}
	if p.flushTimer == nil {
		p.flushTimer = time.AfterFunc(wait, p.requestSync)
		return
	}
	p.flushTimer.Reset(wait)
}
