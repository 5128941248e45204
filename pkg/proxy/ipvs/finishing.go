package ipvs

import (
	"errors"
	"time"
)

// armFinishCheck schedules checkFinishing for the finishing real servers
// refs: one poll from now, or at the end of the first grace if sooner. One
// check is pending at a time; a pending one fires no later than this would
// (a real server's grace ends no sooner than when it was armed).
func (p *Proxier) armFinishCheck(refs []destRef, now time.Time) {
	if len(refs) == 0 || !p.finishCheckPending.CompareAndSwap(false, true) {
		return
	}
	wait := finishPoll
	for _, ref := range refs {
		wait = min(wait, p.finishing[ref].Add(p.cfg.FinishGrace).Sub(now))
	}
	p.afterFunc(max(wait, 0), p.checkFinishing)
}

// checkFinishing re-reads the real servers of the virtual servers that
// have finishing ones and deletes those now done or out of grace, with
// their conntrack entries. It is not a sync: a sync waits for
// minSyncPeriod, the grace must not (nor must it cost a sync every poll).
// It only plans those virtual servers, from the desired state of the last
// sync. On an error the pending deletions stay pending and a full resync
// is scheduled to retry them.
func (p *Proxier) checkFinishing() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishCheckPending.Store(false)
	if len(p.finishing) == 0 || p.kernel == nil || p.desired == nil {
		return
	}
	sc := newScope()
	for ref := range p.finishing {
		sc.services[ref.svc] = struct{}{}
	}
	errs := []error{p.refreshRetiring(sc)}
	now := p.now()
	pl := makePlan(planInput{desired: p.desired, observed: p.kernel, cfg: &p.cfg, firstSync: p.firstSync, scope: sc,
		finishingSince: p.finishing, now: now})
	a := &applier{deps: &p.deps, logger: p.logger, verbose: p.logger.V(4).Enabled(), kernel: p.kernel, deleted: map[string]int{}}
	errs = append(errs, a.apply(pl, func() error { return nil })) // no rule changes: nothing else was planned
	p.unflushed = append(p.unflushed, a.unflushed...)
	p.trackFinishing(pl, now)
	p.countDeletions(a)
	p.logger.V(4).Info("Checked real servers finishing their connections", "deleted", len(pl.deleteDests), "stillFinishing", len(pl.finishing))
	if err := errors.Join(errs...); err != nil {
		p.logger.Error(err, "Deleting finished real servers failed; scheduling a full resync")
		p.needFull = true
		p.syncRunner.Run()
	}
}

func (o *observedState) hasDest(ref destRef) bool {
	s := o.services[ref.svc]
	return s != nil && s.dests.has(ref.dest)
}
