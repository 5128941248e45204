package ipvs

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"k8s.io/kubernetes/pkg/proxy"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
)

// syncProxyRules is one sync: fold in the changes, read the kernel once,
// build the desired state, diff, apply. An error makes the runner retry
// soon, and the retry is a full sync.
func (p *Proxier) syncProxyRules() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.initialized.Load() {
		p.logger.V(2).Info("Not syncing until Services and EndpointSlices have been received")
		return nil
	}
	start := time.Now()
	full := p.firstSync || start.Sub(p.lastFullSync) >= p.cfg.SyncPeriod
	p.svcPortMap.Update(p.serviceChanges)
	epResult := p.endpointsMap.Update(p.endpointsChanges)

	err := p.syncKernel(full)
	p.recordSync(start, full, err, epResult)
	if err != nil {
		p.lastFullSync = time.Time{} // the retry re-checks everything
		return err
	}
	if full {
		p.lastFullSync = start
	}
	p.firstSync = false
	return nil
}

func (p *Proxier) syncKernel(full bool) error {
	var errs []error
	if full {
		errs = append(errs, p.checkPrerequisites())
	}
	observed, err := readObserved(&p.deps, p.cfg.IPFamily)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	desired := buildDesired(buildInput{
		services: p.svcPortMap, endpoints: p.endpointsMap, nodeName: p.cfg.NodeName, nodeIP: p.cfg.NodeIP,
		topologyLabels: p.topologyLabels, otherAddrs: observed.otherAddrs,
		nodePortAddrs: nodePortAddresses(observed.otherAddrs, p.nodePortCIDRs), cfg: &p.cfg,
	})
	pl := makePlan(planInput{desired: desired, observed: observed, cfg: &p.cfg, firstSync: p.firstSync})
	a := &applier{deps: &p.deps, logger: p.logger, deleted: map[string]int{}}
	errs = append(errs, a.apply(pl, func() error { return p.syncRules(desired, full) }))
	p.countDeletions(a)
	p.syncHealthChecks()
	return errors.Join(errs...)
}

// syncRules writes our chains when they changed, and on full syncs even
// when they did not (someone may have flushed them).
func (p *Proxier) syncRules(d *desiredState, full bool) error {
	nat, filter := buildRules(d, &p.cfg)
	var errs []error
	if full || !bytes.Equal(nat, p.lastNAT) {
		p.lastNAT = nil
		if err := p.deps.IPTables.Restore("nat", nat); err != nil {
			errs = append(errs, fmt.Errorf("restore nat chains: %w", err))
		} else {
			p.lastNAT = nat
		}
	}
	if full || !bytes.Equal(filter, p.lastFilter) {
		p.lastFilter = nil
		if err := p.deps.IPTables.Restore("filter", filter); err != nil {
			errs = append(errs, fmt.Errorf("restore filter chains: %w", err))
		} else {
			p.lastFilter = filter
		}
	}
	if full {
		errs = append(errs, p.ensureJumps())
	}
	return errors.Join(errs...)
}

func (p *Proxier) ensureJumps() error {
	var errs []error
	for _, j := range jumpRules() {
		if err := p.deps.IPTables.EnsureJump(j.table, j.from, j.to, "-m", "comment", "--comment", j.comment); err != nil {
			errs = append(errs, fmt.Errorf("ensure jump %s/%s -> %s: %w", j.table, j.from, j.to, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Proxier) countDeletions(a *applier) {
	for reason, n := range a.deleted {
		p.metrics.RealServersDeleted.WithLabelValues(reason).Add(float64(n))
	}
	p.metrics.ConntrackEntriesDeleted.Add(float64(a.flushed))
}

func (p *Proxier) syncHealthChecks() {
	if err := p.serviceHealth.SyncServices(p.svcPortMap.HealthCheckNodePorts()); err != nil {
		p.logger.Error(err, "Error syncing healthcheck services")
	}
	if err := p.serviceHealth.SyncEndpoints(p.endpointsMap.LocalReadyEndpoints()); err != nil {
		p.logger.Error(err, "Error syncing healthcheck endpoints")
	}
}

func (p *Proxier) recordSync(start time.Time, full bool, err error, ep proxy.UpdateEndpointsMapResult) {
	family := string(p.cfg.IPFamily)
	elapsed := proxymetrics.SinceInSeconds(start)
	proxymetrics.SyncProxyRulesLatency.WithLabelValues(family).Observe(elapsed)
	kind := "partial"
	if full {
		kind = "full"
		proxymetrics.SyncFullProxyRulesLatency.WithLabelValues(family).Observe(elapsed)
	} else {
		proxymetrics.SyncPartialProxyRulesLatency.WithLabelValues(family).Observe(elapsed)
	}
	if err != nil {
		p.metrics.SyncsTotal.WithLabelValues(kind, "error").Inc()
		p.logger.Error(err, "Sync failed; scheduling a full resync", "kind", kind)
		return
	}
	p.metrics.SyncsTotal.WithLabelValues(kind, "success").Inc()
	for name, times := range ep.LastChangeTriggerTimes {
		for _, t := range times {
			latency := proxymetrics.SinceInSeconds(t)
			proxymetrics.NetworkProgrammingLatency.WithLabelValues(family).Observe(latency)
			p.logger.V(4).Info("Network programmed", "endpoints", name, "elapsed", latency)
		}
	}
	proxymetrics.SyncProxyRulesLastTimestamp.WithLabelValues(family).SetToCurrentTime()
	if p.deps.HealthServer != nil {
		p.deps.HealthServer.Updated(p.cfg.IPFamily)
	}
	p.logger.V(4).Info("Sync done", "kind", kind, "elapsed", time.Since(start))
}
