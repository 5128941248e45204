package ipvs

import (
	"errors"
	"fmt"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
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
	// unflushed are conntrack filters whose deletion failed: their real
	// servers are gone, so only a retry of the same filters can flush them.
	unflushed []conntrack.Filter
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
// removals, and the conntrack flush last, once no real server can take the
// flows again.
func (a *applier) apply(p *plan, syncRules func() error) error {
	a.applySets(p)
	a.do(syncRules())
	a.applyAddresses(p.bind, true)
	a.applyServices(p)
	a.applyDests(p)
	a.flushConntrack(p)
	a.applyServiceDeletes(p)
	a.applyAddresses(p.unbind, false)
	for _, e := range p.delEntries {
		if a.verbose {
			a.logger.V(4).Info("Deleting ipset entry", "set", e.set, "entry", e.entry)
		}
		if a.do(a.deps.IPSet.DeleteEntry(e.set, e.entry)) {
			delete(a.kernel.sets[e.set].entries, e.entry)
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
			a.kernel.sets[s.Name] = &observedSet{set: s, entries: map[ipset.Entry]struct{}{}}
		}
	}
	for _, e := range p.addEntries {
		if a.verbose {
			a.logger.V(4).Info("Adding ipset entry", "set", e.set, "entry", e.entry)
		}
		if a.do(a.deps.IPSet.AddEntry(e.set, e.entry)) {
			a.kernel.sets[e.set].entries[e.entry] = struct{}{}
		}
	}
}

func (a *applier) applyAddresses(addrs []netip.Addr, bind bool) {
	for _, addr := range addrs {
		if bind {
			if a.verbose {
				a.logger.V(4).Info("Binding address", "device", DummyDevice, "address", addr)
			}
			if a.do(a.deps.NetDev.AddAddress(DummyDevice, addr)) {
				a.kernel.bound[addr] = struct{}{}
			}
			continue
		}
		if a.verbose {
			a.logger.V(4).Info("Unbinding address", "device", DummyDevice, "address", addr)
		}
		if a.do(a.deps.NetDev.DeleteAddress(DummyDevice, addr)) {
			delete(a.kernel.bound, addr)
		}
	}
}

func (a *applier) applyServices(p *plan) {
	for _, ws := range p.addServices {
		s := ws.service
		if a.verbose {
			a.logger.V(4).Info("Adding virtual server", "virtualServer", s.ServiceKey, "scheduler", s.Scheduler, "flags", s.Flags)
		}
		if a.do(a.deps.IPVS.AddService(s)) {
			// Sized for the real servers this sync adds next.
			a.kernel.services[s.ServiceKey] = &observedService{service: s, dests: make(map[ipvs.DestinationKey]ipvs.Destination, len(ws.dests))}
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

func (a *applier) applyDests(p *plan) {
	for _, c := range p.addDests {
		if a.verbose {
			a.logger.V(4).Info("Adding real server", "service", c.want.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey)
		}
		a.setDest(c, a.deps.IPVS.AddDestination(c.key(), c.dest))
	}
	for _, c := range p.reweighDests {
		if a.verbose {
			a.logger.V(4).Info("Setting real server weight", "service", c.want.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey, "weight", c.dest.Weight)
		}
		a.setDest(c, a.deps.IPVS.UpdateDestination(c.key(), c.dest))
	}
	for _, c := range p.deleteDests {
		a.deleteDest(c)
	}
}

func (a *applier) setDest(c destChange, err error) {
	if a.do(err) {
		if s := a.kernel.services[c.key()]; s != nil {
			s.dests[c.dest.DestinationKey] = c.dest
		}
	}
}

func (a *applier) deleteDest(c destChange) {
	if a.verbose {
		a.logger.V(4).Info("Deleting real server", "service", c.want.name, "virtualServer", c.key(), "realServer", c.dest.DestinationKey,
			"reason", c.reason, "activeConn", c.dest.ActiveConn, "inactiveConn", c.dest.InactiveConn)
	}
	if a.do(a.deps.IPVS.DeleteDestination(c.key(), c.dest.DestinationKey)) {
		a.deleted[c.reason]++
		if s := a.kernel.services[c.key()]; s != nil {
			delete(s.dests, c.dest.DestinationKey)
		}
	}
}

func (a *applier) flushConntrack(p *plan) {
	if len(p.conntrack) == 0 {
		return
	}
	n, err := a.deps.Conntrack.Delete(p.conntrack)
	if err != nil {
		err = fmt.Errorf("delete conntrack entries of %d removed endpoints: %w", len(p.conntrack), err)
		a.unflushed = p.conntrack
	}
	a.do(err)
	a.flushed += n
	a.logger.V(4).Info("Deleted conntrack entries of removed endpoints", "filters", len(p.conntrack), "entries", n)
}

func (a *applier) applyServiceDeletes(p *plan) {
	for _, s := range p.deleteServices {
		key := s.service.ServiceKey
		if a.verbose {
			a.logger.V(4).Info("Deleting virtual server", "virtualServer", key, "realServers", len(s.dests))
		}
		if a.do(a.deps.IPVS.DeleteService(key)) {
			delete(a.kernel.services, key)
		}
	}
}
