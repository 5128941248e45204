package ipvs

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// armFinishCheck schedules checkFinishing: one poll from now, or at the
// end of the first grace if sooner; nothing once every grace has ended (a
// real server still there then failed to be deleted: the full resync that
// failure scheduled deletes it). One check is pending at a time; a pending
// one fires no later than this would (a grace ends no sooner than when it
// was armed).
func (p *Proxier) armFinishCheck(now time.Time) {
	wait, pending := finishPoll, false
	for _, since := range p.finishing {
		if left := since.Add(p.cfg.FinishGrace).Sub(now); left > 0 {
			wait, pending = min(wait, left), true
		}
	}
	if pending && p.finishCheckPending.CompareAndSwap(false, true) {
		p.afterFunc(wait, p.checkFinishing)
	}
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
	sc := newScope(len(p.finishing))
	for ref := range p.finishing {
		sc.services[ref.svc] = struct{}{}
	}
	p.kernel.pinScope(sc)
	errs := []error{p.refreshRetiring(sc)}
	pl, err := p.applyPlan(sc, func() error { return nil }) // no rule changes: nothing else was planned
	errs = append(errs, err)
	p.logger.V(4).Info("Checked real servers finishing their connections", "deleted", len(pl.deleteDests), "stillFinishing", len(pl.finishing))
	if err := errors.Join(errs...); err != nil {
		p.logger.Error(err, "Deleting finished real servers failed; scheduling a full resync")
		p.needFull = true
		p.requestSync()
	}
}

// checkInFlight marks the deletions of real servers that may finish
// (mayFinish) and have no connection established but some inactive ones:
// a connection still in its handshake (SYN_RECV) is counted as inactive,
// and its deletion would reset it. Before kernel 5.9 (conn_reuse_mode=0) a
// new connection that reuses a source port last used towards the real
// server still lands on it, weight 0 or not, so one may be starting at any
// time. Without inactive connections there is no entry to reuse, nothing
// to check.
func (p *plan) checkInFlight(in planInput) {
	for i := range p.deleteDests {
		c := &p.deleteDests[i]
		if c.reason == reasonImmediate && c.dest.ActiveConn == 0 && c.dest.InactiveConn > 0 && in.mayFinish(c.key(), c.dest) {
			c.unlessInFlight = true
		}
	}
}

// inFlight says whether a connection to a real server through its virtual
// server is still open (not closing: a handshake, established, or
// half-closed), from the connection table read just before the deletions
// (openConns). On a read error it says yes: the grace bounds the wait.
func (a *applier) inFlight(c destChange) bool {
	key := c.key()
	vip := netip.AddrPortFrom(key.Address, key.Port)
	rip := netip.AddrPortFrom(c.dest.Address, c.dest.Port)
	if a.openErr != nil {
		a.logger.Error(a.openErr, "Keeping a removed endpoint's real server: cannot tell whether a connection to it is open", "virtualServer", key, "realServer", rip)
		return true
	}
	if open, ok := a.open[connPath{key.Protocol, vip, rip}]; ok {
		a.logger.V(2).Info("Keeping a removed endpoint's real server: a connection to it is open", "virtualServer", key, "realServer", rip,
			"client", open.Client, "state", open.State)
		return true
	}
	return false
}

// connPath is a virtual server and one of its real servers.
type connPath struct {
	protocol      ipvs.Protocol
	virtual, real netip.AddrPort
}

// openConns reads the connection table once for the plan's deletions that
// wait for connections in flight, and keeps an open connection of each.
// The table holds every connection of the node; it is read only when such
// deletions are planned, which happens while a draining endpoint's grace
// runs, and once however many there are.
func (a *applier) openConns(p *plan) {
	want := map[connPath]struct{}{}
	for _, c := range p.deleteDests {
		if c.unlessInFlight {
			key := c.key()
			want[connPath{key.Protocol, netip.AddrPortFrom(key.Address, key.Port), netip.AddrPortFrom(c.dest.Address, c.dest.Port)}] = struct{}{}
		}
	}
	if len(want) == 0 {
		return
	}
	a.open = map[connPath]ipvs.Connection{}
	start, entries, closing := time.Now(), 0, 0
	a.openErr = a.deps.IPVS.Connections(func(conn ipvs.Connection) bool {
		entries++
		path := connPath{conn.Protocol, conn.Virtual, conn.Real}
		if _, ok := want[path]; ok {
			if !conn.Closing() {
				a.open[path] = conn
				delete(want, path)
			} else {
				closing++
			}
		}
		return len(want) > 0
	})
	if a.verbose {
		a.logger.V(4).Info("Read the IPVS connection table for deletions that wait for connections in flight",
			"entriesRead", entries, "closingToThem", closing, "open", len(a.open), "took", time.Since(start))
	}
}

// flowsOfDeferred says whether a conntrack filter is for the flows to a
// real server whose deletion was deferred.
func (a *applier) flowsOfDeferred(f conntrack.Filter) bool {
	return slices.ContainsFunc(a.deferred, func(ref destRef) bool { return f == flowsTo(ref) })
}
