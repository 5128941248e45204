package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// applier runs a plan against the kernel in a safe order and collects
// errors instead of stopping: one failing object must not keep the others
// from being programmed. Any error makes the sync fail, which schedules a
// full resync. Each write that succeeds is recorded in the observed state,
// which is how a partial sync knows the kernel without reading it.
type applier struct {
	deps   *Deps
	logger klog.Logger
	// verbose is logger.V(4).Enabled(): per-object logs are built only
	// then (their arguments cost allocations even when not written).
	verbose bool
	kernel  *observedState
	errs    []error
	// deleted counts real servers deleted, by reason.
	deleted map[string]int
	flushed int
	// flushErr is why the conntrack flush failed: not a sync error (see
	// pendingFlushes), so it is kept apart from errs.
	flushErr error
	// flushTook is how long the conntrack flush took; flushRan says one ran.
	flushTook time.Duration
	flushRan  bool
	// deferred are real servers whose deletion waits for a connection in
	// flight: their flows stay too.
	deferred []destRef
	// created says which of the plan's new virtual servers were created.
	created []bool
	// open are the connections in flight to the real servers whose deletion
	// waits for them, openErr why the table could not be read (openConns).
	open    map[connPath]ipvs.Connection
	openErr error
}

func (a *applier) do(err error) bool {
	if err != nil {
		a.logger.Error(err, "Kernel operation failed; will resync")
		a.errs = append(a.errs, err)
		return false
	}
	return true
}

// apply runs the plan: sets and their new members first (the rules match
// them), the iptables rules, then addresses, virtual and real servers, then
// removals, and the conntrack flush once the removed real servers and
// virtual servers are gone, so that no packet can re-create a flow to an
// old real server after it.
func (a *applier) apply(p *plan, syncRules func() error) error {
	a.applySets(p)
	a.do(syncRules())
	a.applyAddresses(p.bind, true)
	a.applyServices(p)
	a.openConns(p)
	a.applyDests(p)
	a.applyServiceDeletes(p)
	a.flushConntrack(p)
	a.applyAddresses(p.unbind, false)
	for _, e := range p.delEntries {
		if a.verbose {
			a.logger.V(4).Info("Deleting ipset entry", "set", e.set, "entry", e.entry)
		}
		if a.do(a.deps.IPSet.DeleteEntry(e.set, e.entry)) {
			a.kernel.setEntry(e.set, e.entry, false)
		}
	}
	return errors.Join(a.errs...)
}

func (a *applier) applySets(p *plan) {
	for _, name := range p.destroySets {
		a.logger.V(2).Info("Recreating ipset with the wrong type", "set", name)
		if a.do(a.deps.IPSet.DestroySet(name)) {
			delete(a.kernel.sets, name)
		}
	}
	for _, s := range p.createSets {
		if a.verbose {
			a.logger.V(4).Info("Creating ipset", "set", s.Name, "type", s.Type)
		}
		if a.do(a.deps.IPSet.CreateSet(s)) {
			// Sized for the members added next (a first sync: one per service).
			// Its members are implied: the plan adds every wanted one.
			name, _ := ownSetName(s.Name, a.kernel.family)
			a.kernel.sets[s.Name] = &observedSet{set: s, name: name, entries: map[ipset.Entry]bool{}}
		}
	}
	for _, e := range p.addEntries {
		if a.verbose {
			a.logger.V(4).Info("Adding ipset entry", "set", e.set, "entry", e.entry)
		}
		// A failed add is recorded: a full sync's plan is assumed written.
		a.kernel.setEntry(e.set, e.entry, a.do(a.deps.IPSet.AddEntry(e.set, e.entry)))
	}
}

func (a *applier) applyAddresses(addrs []netip.Addr, bind bool) {
	for _, addr := range addrs {
		if bind {
			if a.verbose {
				a.logger.V(4).Info("Binding address", "device", DummyDevice, "address", addr)
			}
			// A failed add is recorded: a full sync's plan is assumed written.
			a.kernel.setBound(addr, a.do(a.deps.NetDev.AddAddress(DummyDevice, addr)))
			continue
		}
		if a.verbose {
			a.logger.V(4).Info("Unbinding address", "device", DummyDevice, "address", addr)
		}
		if a.do(a.deps.NetDev.DeleteAddress(DummyDevice, addr)) {
			a.kernel.setBound(addr, false)
		}
	}
}

func (a *applier) applyServices(p *plan) {
	a.created = make([]bool, len(p.addServices))
	for i, ws := range p.addServices {
		s := ws.service
		if a.verbose {
			a.logger.V(4).Info("Adding virtual server", "virtualServer", s.ServiceKey, "scheduler", s.Scheduler, "flags", s.Flags)
		}
		// Recorded with its real servers, which applyDests adds next; a
		// failed add is recorded: a full sync's plan is assumed written.
		if a.created[i] = a.do(a.deps.IPVS.AddService(s)); !a.created[i] {
			a.kernel.setService(s.ServiceKey, nil)
		}
	}
	for _, s := range p.updateServices {
		if a.verbose {
			a.logger.V(4).Info("Updating virtual server", "virtualServer", s.ServiceKey, "scheduler", s.Scheduler, "flags", s.Flags)
		}
		if a.do(a.deps.IPVS.UpdateService(s)) {
			a.kernel.services[s.ServiceKey].service = s
		}
	}
}

// applyDests adds the real servers of the new virtual servers, then adds,
// re-weights and deletes the others'. The kernel cache takes each virtual
// server's successful writes at once (a sorted merge), not one by one.
func (a *applier) applyDests(p *plan) {
	for i, ws := range p.addServices {
		if a.created[i] {
			a.addServiceDests(ws)
		}
	}
	eachService(p.addDests, func(run []destChange) { a.writeDests(run, a.addDest) })
	eachService(p.reweighDests, func(run []destChange) { a.writeDests(run, a.reweighDest) })
	eachService(p.deleteDests, a.deleteDests)
}

// addServiceDests adds every real server of a virtual server this sync
// created and records it: as wanted (nothing stored) when every write
// succeeded.
func (a *applier) addServiceDests(ws *wantedService) {
	var written destList // once a write failed: those that succeeded
	for i := range ws.dests.len() {
		c := destChange{want: ws, dest: ipvs.Destination{DestinationKey: ws.dests.at(i), Weight: 1}}
		ok := a.addDest(c)
		switch {
		case !ok && written == nil:
			written = weightOne(ws.dests, i)
		case ok && written != nil:
			written = append(written, c.dest) // stays sorted: ws.dests is
		}
	}
	if written == nil {
		a.kernel.setWanted(ws)
		return
	}
	a.kernel.setService(ws.service.ServiceKey, &observedService{service: ws.service, dests: written})
}

// writeDests writes one virtual server's real servers (sorted) and caches
// those written.
func (a *applier) writeDests(run []destChange, write func(destChange) bool) {
	var room [4]ipvs.Destination // most runs change one or two: no allocation
	written := room[:0]
	for _, c := range run {
		if write(c) {
			written = append(written, c.dest)
		}
	}
	if s := a.kernel.services[run[0].key()]; s != nil && len(written) > 0 {
		s.dests = s.list().upsert(written)
	}
}

// eachService calls f with the changes of each virtual server in turn (the
// plan sorts them by virtual server).
func eachService(changes []destChange, f func(run []destChange)) {
	for len(changes) > 0 {
		n := 1
		for n < len(changes) && changes[n].key() == changes[0].key() {
			n++
		}
		f(changes[:n])
		changes = changes[n:]
	}
}

func (a *applier) addDest(c destChange) bool {
	if a.verbose {
		a.logger.V(4).Info("Adding real server", "service", c.want.port.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey)
	}
	return a.do(a.deps.IPVS.AddDestination(c.key(), c.dest))
}

func (a *applier) reweighDest(c destChange) bool {
	if a.verbose {
		a.logger.V(4).Info("Setting real server weight", "service", c.want.port.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey, "weight", c.dest.Weight)
	}
	return a.do(a.deps.IPVS.UpdateDestination(c.key(), c.dest))
}

// deleteDests deletes one virtual server's retired real servers.
func (a *applier) deleteDests(run []destChange) {
	var room [4]ipvs.DestinationKey // most runs delete one: no allocation
	gone := room[:0]
	for _, c := range run {
		if c.unlessInFlight && a.inFlight(c) {
			a.deferred = append(a.deferred, destRef{c.key(), c.dest.DestinationKey})
			continue
		}
		if a.verbose {
			a.logger.V(4).Info("Deleting real server", "service", c.want.port.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey,
				"reason", c.reason, "activeConn", c.dest.ActiveConn, "inactiveConn", c.dest.InactiveConn)
		}
		if a.do(a.deps.IPVS.DeleteDestination(c.key(), c.dest.DestinationKey)) {
			a.deleted[c.reason]++
			gone = append(gone, c.dest.DestinationKey)
		}
	}
	if s := a.kernel.services[run[0].key()]; s != nil {
		s.dests = s.list().remove(gone)
	}
}

func (a *applier) flushConntrack(p *plan) {
	if len(a.deferred) > 0 {
		p.conntrack = slices.DeleteFunc(slices.Clone(p.conntrack), a.flowsOfDeferred)
	}
	if len(p.conntrack) == 0 {
		return
	}
	start := time.Now()
	n, err := a.deps.Conntrack.Delete(p.conntrack)
	a.flushTook, a.flushRan = time.Since(start), true
	// Counted even when the flush failed: its retry will not find them.
	a.flushed += n
	if err != nil {
		a.flushErr = fmt.Errorf("delete conntrack entries of %d removed endpoints (%d deleted): %w", len(p.conntrack), n, err)
		return
	}
	a.logger.V(4).Info("Deleted conntrack entries of removed endpoints", "filters", len(p.conntrack), "entries", n)
}

func (a *applier) applyServiceDeletes(p *plan) {
	for _, s := range p.deleteServices {
		key := s.service.ServiceKey
		if a.verbose {
			a.logger.V(4).Info("Deleting virtual server", "virtualServer", key, "realServers", len(s.list()))
		}
		if a.do(a.deps.IPVS.DeleteService(key)) {
			a.kernel.setService(key, nil)
		}
	}
}
