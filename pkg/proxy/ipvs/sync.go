package ipvs

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// syncProxyRules is one sync. A full sync reads the kernel, rebuilds the
// whole desired state and compares everything; a partial sync rebuilds
// only the changed services and compares only what they touch, against
// the kernel state the last syncs read and wrote. Syncs are full at start,
// every syncPeriod, after any error, and when the node's addresses or
// topology change.
func (p *Proxier) syncProxyRules() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.initialized.Load() {
		p.logger.V(2).Info("Not syncing until Services and EndpointSlices have been received")
		return nil
	}
	start := time.Now()
	p.phases = phaseTimer{last: start}
	p.takeNodeReadiness()
	svcResult := p.svcPortMap.Update(p.serviceChanges)
	epResult := p.endpointsMap.Update(p.endpointsChanges)
	// What the trackers gave up is ours alone now: a sync that fails
	// before building it into the desired state hands it to the next.
	changed := svcResult.UpdatedServices.Union(epResult.UpdatedServices).Union(p.unbuilt)
	servicesChanged := svcResult.UpdatedServices.Union(p.unbuiltServices)
	p.unbuilt, p.unbuiltServices = nil, nil
	p.keepTriggerTimes(epResult.LastChangeTriggerTimes)
	full := p.needFull || p.kernel == nil || start.Sub(p.lastFullSync) >= p.cfg.SyncPeriod

	full, err := p.syncKernel(full, changed, servicesChanged)
	p.recordSync(start, full, err)
	if err != nil {
		p.needFull = true // the retry re-reads and re-checks everything
		return err
	}
	if full {
		// The period runs from the end of the full sync: one that takes
		// longer than the period (a large node, a slow machine) still
		// leaves a period of partial syncs before the next.
		p.lastFullSync = time.Now()
		p.scheduleFullSync()
		p.startRuleAudit()
	}
	p.needFull, p.firstSync = false, false
	return nil
}

// scheduleFullSync makes sure a sync runs one period after this full sync:
// the runner's own period restarts at every sync, so partial syncs in
// between would otherwise push the next full one (and the repair of
// external changes) up to a period later.
func (p *Proxier) scheduleFullSync() {
	if !p.looping.Load() {
		return // syncs driven by hand (tests, benchmarks) have no period
	}
	if p.fullSyncTimer == nil {
		p.fullSyncTimer = time.AfterFunc(p.cfg.SyncPeriod, p.requestSync)
		return
	}
	p.fullSyncTimer.Reset(p.cfg.SyncPeriod)
}

// syncKernel brings the kernel to the desired state and reports whether it
// ended up doing a full sync. changed are the Services whose ports or
// endpoints changed, servicesChanged those whose Service object did.
func (p *Proxier) syncKernel(full bool, changed, servicesChanged sets.Set[types.NamespacedName]) (bool, error) {
	var errs []error
	if !full {
		others, err := readOtherAddrs(&p.deps, p.cfg.IPFamily)
		if err != nil || !sameAddrSet(others, p.kernel.otherAddrs) {
			full = true // node addresses change NodePorts and bindings everywhere
		}
	}
	var sc *scope
	if full {
		errs = append(errs, p.checkPrerequisites())
		p.phases.mark("prerequisites")
		if err := p.rereadKernel(changed, servicesChanged); err != nil {
			p.unbuilt, p.unbuiltServices = changed, servicesChanged
			return true, errors.Join(append(errs, err)...)
		}
		p.phases.mark("readKernel")
	} else {
		sc = p.updateDesired(changed, servicesChanged)
		for ref := range p.finishing {
			sc.services[ref.svc] = struct{}{} // re-read and re-decided each sync
		}
		p.kernel.pinScope(sc)
		errs = append(errs, p.refreshRetiring(sc))
	}
	_, err := p.applyPlan(sc, func() error {
		p.phases.mark("plan")
		err := p.syncRules(full)
		p.phases.mark("iptables")
		return err
	})
	p.phases.mark("apply")
	errs = append(errs, err)
	if full || p.healthChecksChanged(changed) {
		p.syncHealthChecks()
	}
	return full, errors.Join(errs...)
}

// applyPlan diffs the desired state against the kernel (within sc; nil:
// everything) and applies the plan with the pending conntrack flushes, then
// records how the flush went, which real servers are finishing, and the
// deletions. Syncs and the finish check both go through it.
func (p *Proxier) applyPlan(sc *scope, syncRules func() error) (*plan, error) {
	now := p.now()
	pl := makePlan(planInput{desired: p.desired, observed: p.kernel, cfg: &p.cfg, firstSync: p.firstSync, scope: sc,
		finishingSince: p.finishing, now: now})
	if sc == nil {
		p.kernel.assumeWritten(p.desired)
	}
	p.flushes.dropWanted(p.desired)
	pl.conntrack = p.flushes.take(pl.conntrack, now)
	a := &applier{deps: &p.deps, logger: p.logger, verbose: p.logger.V(4).Enabled(), kernel: p.kernel, deleted: map[string]int{}}
	err := a.apply(pl, syncRules)
	if a.flushRan {
		p.phases.took = append(p.phases.took, "of which conntrack="+a.flushTook.Round(time.Microsecond).String())
	}
	p.settleFlush(pl.conntrack, a.flushErr, now)
	p.desired.forgetGone(p.kernel)
	p.trackFinishing(pl, now)
	p.countDeletions(a)
	p.countWeightZero(sc)
	p.kernel.fold(sc == nil)
	return pl, err
}

// rereadKernel reads the whole kernel state for a full sync and brings the
// desired state up to date: rebuilt when what every contribution depends on
// changed (node addresses, topology labels) or on the first sync, else
// only the changed services are rebuilt (the rest would come out the same).
func (p *Proxier) rereadKernel(changed, servicesChanged sets.Set[types.NamespacedName]) error {
	kernel, err := readObserved(&p.deps, p.cfg.IPFamily)
	if err != nil {
		return err
	}
	reuse := p.desired != nil && !p.desiredStale && sameAddrSet(kernel.otherAddrs, p.kernel.otherAddrs)
	p.kernel = kernel
	if reuse {
		p.updateDesired(changed, servicesChanged)
	} else {
		fresh := p.rebuildDesired()
		fresh.inheritGone(p.desired)
		p.desired, p.desiredStale = fresh, false
	}
	return nil
}

func (p *Proxier) buildInput() *buildInput {
	in := &buildInput{
		nodeName: p.cfg.NodeName, nodeIP: p.cfg.NodeIP, topologyLabels: p.topologyLabels,
		otherAddrs: p.kernel.otherAddrs, nodePortAddrs: nodePortAddresses(p.kernel.otherAddrs, p.nodePortCIDRs),
		notReadyNodes: p.notReadyNodes, cfg: &p.cfg,
	}
	if p.notReadyNodes.Len() > 0 {
		in.endpointNodes = p.endpointNodes.snapshot() // needed only while a node is lost
	}
	return in
}

// rebuildDesired computes the whole desired state from scratch.
func (p *Proxier) rebuildDesired() *desiredState {
	in := p.buildInput()
	d := newDesiredState(len(p.svcPortMap), p.cfg.IPFamily)
	for name, port := range p.svcPortMap {
		d.replace(name, buildContribution(in, name, port, p.endpointsMap[name]), nil) // a full sync compares everything
	}
	return d
}

// updateDesired rebuilds the contributions of the changed services' ports
// and returns what changed.
func (p *Proxier) updateDesired(changed, servicesChanged sets.Set[types.NamespacedName]) *scope {
	in := p.buildInput()
	sc := newScope(len(changed))
	for nn := range changed {
		for _, name := range p.desired.ports(nil, nn) { // a copy: replace changes the index
			if _, still := p.svcPortMap[name]; !still {
				p.replaceContribution(name, nil, sc)
			}
		}
	}
	for _, name := range p.changedPorts(changed, servicesChanged) {
		if port, ok := p.svcPortMap[name]; ok {
			p.replaceContribution(name, buildContribution(in, name, port, p.endpointsMap[name]), sc)
		}
	}
	return sc
}

// replaceContribution swaps a service port's contribution (nil removes
// it), first pinning the kernel's view of what the old and the new one
// touch: the observed state implies the desired state where it matched.
func (p *Proxier) replaceContribution(name proxy.ServicePortName, c *contribution, sc *scope) {
	p.kernel.pinContribution(p.desired.contribution(name))
	p.kernel.pinContribution(c)
	p.desired.replace(name, c, sc)
}

// changedPorts lists the current ports of the changed services. A Service
// whose object changed may have new ports: those are found by scanning
// every port (no index of upstream's map); a Service whose endpoints alone
// changed has the ports the desired state already indexes.
func (p *Proxier) changedPorts(changed, servicesChanged sets.Set[types.NamespacedName]) []proxy.ServicePortName {
	var out []proxy.ServicePortName
	if servicesChanged.Len() > 0 {
		for name := range p.svcPortMap {
			if servicesChanged.Has(name.NamespacedName) {
				out = append(out, name)
			}
		}
	}
	for nn := range changed {
		if !servicesChanged.Has(nn) {
			out = p.desired.ports(out, nn)
		}
	}
	return out
}

// refreshRetiring re-reads the real servers of TCP virtual servers that are
// about to lose one: unless the immediate policy deletes it, whether it is
// deleted or parked at weight 0 depends on its connection counts now, not
// at the last full read.
func (p *Proxier) refreshRetiring(sc *scope) error {
	var errs []error
	for key := range sc.services {
		want, have := p.desired.service(key), p.kernel.services[key] // pinned: explicit
		if want == nil || have == nil || key.Protocol != ipvs.TCP || !losesDest(want, have) {
			continue
		}
		dests, err := p.deps.IPVS.Destinations(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("read real servers of %s: %w", key, err))
			continue
		}
		have.dests, have.fromWanted, have.lazy = newDestList(dests), nil, false // have is the pinned entry
	}
	return errors.Join(errs...)
}

// trackFinishing remembers since when each real server of the plan has been
// finishing its connections (the plan revisits every one of them), and
// schedules their recheck. So does one whose deletion was deferred (a
// connection in flight) or failed: its grace runs on from its start.
func (p *Proxier) trackFinishing(pl *plan, now time.Time) {
	next := make(map[destRef]time.Time, len(pl.finishing))
	for _, ref := range pl.finishing {
		since, ok := p.finishing[ref]
		if !ok {
			since = now
			p.logger.V(4).Info("Keeping a removed endpoint's real server while its connections finish",
				"virtualServer", ref.svc, "realServer", netip.AddrPortFrom(ref.dest.Address, ref.dest.Port), "grace", p.cfg.FinishGrace)
		}
		next[ref] = since
	}
	for _, c := range pl.deleteDests {
		ref := destRef{c.key(), c.dest.DestinationKey}
		since, ok := p.finishing[ref]
		if (ok || c.unlessInFlight) && p.kernel.hasDest(ref) {
			if !ok {
				since = now
			}
			next[ref] = since
		}
	}
	p.finishing = next
	p.armFinishCheck(now)
}

// finishPoll is how often finishing real servers are checked: a fraction
// of DefaultFinishGrace, so one is deleted soon after its last request.
const finishPoll = 50 * time.Millisecond

func (p *Proxier) now() time.Time {
	if p.deps.Now != nil {
		return p.deps.Now()
	}
	return time.Now()
}

func losesDest(want *wantedService, have *observedService) bool {
	if have.lazy {
		for i := range have.fromWanted.len() {
			if !want.dests.has(have.fromWanted.at(i)) {
				return true
			}
		}
		return false
	}
	for _, d := range have.dests {
		if !want.dests.has(d.DestinationKey) {
			return true
		}
	}
	return false
}

// syncRules writes a table's chains when they changed and, on full syncs,
// when iptables-save shows that they or a jump to them changed since our
// last write (someone flushed or edited them); the jumps are re-ensured
// whenever a full sync writes.
func (p *Proxier) syncRules(full bool) error {
	nat, filter := buildRules(p.desired, &p.cfg)
	var errs []error
	var wrote []string
	for _, t := range []struct {
		table   string
		payload []byte
		last    *[]byte
	}{{"nat", nat, &p.lastNAT}, {"filter", filter, &p.lastFilter}} {
		if bytes.Equal(t.payload, *t.last) && !p.tableChanged(t.table, full) {
			continue
		}
		wrote, *t.last = append(wrote, t.table), nil
		if err := p.deps.IPTables.Restore(t.table, t.payload); err != nil {
			proxymetrics.IPTablesRestoreFailuresTotal.WithLabelValues(string(p.cfg.IPFamily)).Inc()
			errs = append(errs, fmt.Errorf("restore %s chains: %w", t.table, err))
			continue
		}
		*t.last = t.payload
		delete(p.audit.changed, t.table)
	}
	if full && len(wrote) > 0 {
		errs = append(errs, p.ensureJumps())
	}
	err := errors.Join(errs...)
	switch {
	case len(wrote) == 0:
	case full:
		p.rememberRules(wrote, err == nil)
	default:
		p.recordPartialWrite(wrote, err == nil)
	}
	return err
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
	if a.flushRan { // upstream's conntrack reconciler metrics: our flush is its counterpart
		family := string(p.cfg.IPFamily)
		proxymetrics.ReconcileConntrackFlowsLatency.WithLabelValues(family).Observe(a.flushTook.Seconds())
		proxymetrics.ReconcileConntrackFlowsDeletedEntriesTotal.WithLabelValues(family).Add(float64(a.flushed))
	}
}

// healthChecksChanged says whether a changed service has, or had, a
// healthCheckNodePort server to update.
func (p *Proxier) healthChecksChanged(changed sets.Set[types.NamespacedName]) bool {
	for name := range changed {
		if _, had := p.healthChecked[name]; had {
			return true
		}
	}
	found := false
	for nn := range changed {
		p.desired.byService.each(nn, func(c *contribution) { // updated for this sync already
			if port, ok := p.svcPortMap[c.name]; ok && port.HealthCheckNodePort() > 0 {
				found = true
			}
		})
	}
	return found
}

func (p *Proxier) syncHealthChecks() {
	ports := p.svcPortMap.HealthCheckNodePorts()
	p.healthChecked = make(map[types.NamespacedName]struct{}, len(ports))
	for name := range ports {
		p.healthChecked[name] = struct{}{}
	}
	if err := p.serviceHealth.SyncServices(ports); err != nil {
		p.logger.Error(err, "Error syncing healthcheck services")
	}
	if err := p.serviceHealth.SyncEndpoints(p.endpointsMap.LocalReadyEndpoints()); err != nil {
		p.logger.Error(err, "Error syncing healthcheck endpoints")
	}
}

// keepTriggerTimes adds the trackers' EndpointSlice change times to those
// not yet programmed: a failed sync programmed nothing for sure, so they
// are observed by the next successful one.
func (p *Proxier) keepTriggerTimes(times map[types.NamespacedName][]time.Time) {
	if len(times) == 0 {
		return
	}
	if p.triggerTimes == nil {
		p.triggerTimes = make(map[types.NamespacedName][]time.Time, len(times))
	}
	for name, t := range times {
		p.triggerTimes[name] = append(p.triggerTimes[name], t...)
	}
}

func (p *Proxier) recordSync(start time.Time, full bool, err error) {
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
	for name, times := range p.triggerTimes {
		for _, t := range times {
			latency := proxymetrics.SinceInSeconds(t)
			proxymetrics.NetworkProgrammingLatency.WithLabelValues(family).Observe(latency)
			p.logger.V(4).Info("Network programmed", "endpoints", name, "elapsed", latency)
		}
	}
	p.triggerTimes = nil
	proxymetrics.SyncProxyRulesLastTimestamp.WithLabelValues(family).SetToCurrentTime()
	for _, policy := range []string{trafficPolicyInternal, trafficPolicyExternal} {
		n := p.desired.servicesWithoutLocalEndpoints(policy)
		proxymetrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues(policy, family).Set(float64(n))
	}
	if p.deps.HealthServer != nil {
		p.deps.HealthServer.Updated(p.cfg.IPFamily)
	}
	p.logger.V(4).Info("Sync done", "kind", kind, "elapsed", time.Since(start), "phases", p.phases.took)
}

// phaseTimer notes how long each step of a sync took, for the -v=4 log:
// where a slow sync spends its time.
type phaseTimer struct {
	last time.Time
	took []string
}

func (t *phaseTimer) mark(phase string) {
	now := time.Now()
	t.took = append(t.took, phase+"="+now.Sub(t.last).Round(time.Microsecond).String())
	t.last = now
}
