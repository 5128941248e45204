package ipvs

import (
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// The observed state's lookups, pins and folds (see observedState).

// lookupService is the virtual server the kernel holds at key (nil: none),
// or explicit false when it holds the desired one as wanted (implied).
func (o *observedState) lookupService(key ipvs.ServiceKey) (s *observedService, explicit bool) {
	if s, ok := o.services[key]; ok || o.implied == nil {
		return s, true
	}
	if o.implied.service(key) == nil {
		return nil, true
	}
	return nil, false
}

// service is the virtual server the kernel holds at key, or nil; an
// implied one is built from the desired state (its real servers listed
// when first needed: the desired state replaces, never changes, them).
func (o *observedState) service(key ipvs.ServiceKey) *observedService {
	s, explicit := o.lookupService(key)
	if explicit {
		return s
	}
	ws := o.implied.service(key)
	return &observedService{service: ws.service, fromWanted: ws.dests, lazy: true}
}

// weightOne lists the first n real servers of keys at weight 1, with room
// for all of them.
func weightOne(keys destKeys, n int) destList {
	out := make(destList, n, keys.len())
	for i := range n {
		out[i] = ipvs.Destination{DestinationKey: keys.at(i), Weight: 1}
	}
	return out
}

func (o *observedState) hasService(key ipvs.ServiceKey) bool {
	s, explicit := o.lookupService(key)
	return !explicit || s != nil
}

func (o *observedState) hasDest(ref destRef) bool {
	s, explicit := o.lookupService(ref.svc)
	if !explicit {
		return o.implied.service(ref.svc).dests.has(ref.dest)
	}
	return s != nil && s.has(ref.dest)
}

// weightZero counts the real servers at weight 0 of a virtual server (an
// implied one has none).
func (o *observedState) weightZero(key ipvs.ServiceKey) int {
	s, explicit := o.lookupService(key)
	if !explicit || s == nil || s.lazy {
		return 0
	}
	n := 0
	for _, d := range s.dests {
		if d.Weight == 0 {
			n++
		}
	}
	return n
}

func (o *observedState) isBound(a netip.Addr) bool {
	if b, ok := o.bound[a]; ok || o.implied == nil {
		return b
	}
	return o.implied.bound.has(a)
}

// hasEntry says whether a set (kernel name) holds a member.
func (o *observedState) hasEntry(set string, e ipset.Entry) bool {
	s := o.sets[set]
	if s == nil {
		return false
	}
	return o.inSet(s, e)
}

func (o *observedState) inSet(s *observedSet, e ipset.Entry) bool {
	if in, ok := s.entries[e]; ok || s.whole || o.implied == nil {
		return in
	}
	return o.implied.wants(s.name, e)
}

// The applier records each write that succeeded through these: a value
// the desired state implies is dropped rather than stored.

// setService records a virtual server the kernel now holds (nil: none).
func (o *observedState) setService(key ipvs.ServiceKey, s *observedService) {
	if o.implied != nil && sameAsWanted(o.implied.service(key), s) {
		delete(o.services, key)
		return
	}
	o.services[key] = s
}

// setWanted records that the kernel holds ws with all of its real servers
// at weight 1.
func (o *observedState) setWanted(ws *wantedService) {
	key := ws.service.ServiceKey
	if o.implied != nil && o.implied.service(key) == ws {
		delete(o.services, key)
		return
	}
	o.services[key] = &observedService{service: ws.service, dests: weightOne(ws.dests, ws.dests.len())}
}

func (o *observedState) setBound(a netip.Addr, bound bool) {
	if o.implied != nil && o.implied.bound.has(a) == bound {
		delete(o.bound, a)
		return
	}
	o.bound[a] = bound
}

// setEntry records whether a set (kernel name) holds a member.
func (o *observedState) setEntry(set string, e ipset.Entry, in bool) {
	s := o.sets[set]
	if s == nil {
		return
	}
	if !s.whole && o.implied != nil && o.implied.wants(s.name, e) == in {
		delete(s.entries, e)
		return
	}
	s.entries[e] = in
}

// sameAsWanted says whether the kernel's virtual server s (nil: none) is
// the wanted one ws (nil: none) with exactly its real servers at weight 1:
// then every diff against it comes out as against ws. Connection counts
// are not kept: a real server about to be retired is re-read first
// (refreshRetiring), and one at weight 1 is never kept for them.
func sameAsWanted(ws *wantedService, s *observedService) bool {
	if ws == nil || s == nil {
		return ws == nil && s == nil
	}
	if !sameService(ws.service, s.service) {
		return false
	}
	if s.lazy {
		return slices.Equal(ws.dests, s.fromWanted)
	}
	if ws.dests.len() != len(s.dests) {
		return false
	}
	for i, d := range s.dests { // both sorted by key
		if d.Weight != 1 || d.DestinationKey != ws.dests.at(i) {
			return false
		}
	}
	return true
}

// pinContribution makes the kernel's view of every key a contribution
// touches explicit, before the desired state changes there.
func (o *observedState) pinContribution(c *contribution) {
	if o.implied == nil || c == nil {
		return
	}
	c.eachService(func(ws *wantedService) { o.pinService(ws.service.ServiceKey) })
	c.eachBound(func(a netip.Addr) {
		o.pinAddr(a)
		o.pinEntry(setName(setIPVSAddresses, o.family), ipset.Entry{IP: a})
	})
	c.eachEntry(func(e setEntry) { o.pinEntry(setName(e.set, o.family), e.entry) })
}

// pinScope makes the keys of a partial sync's scope explicit, so that the
// plan reads and the applier writes explicit entries.
func (o *observedState) pinScope(sc *scope) {
	if o.implied == nil {
		return
	}
	for key := range sc.services {
		o.pinService(key)
	}
	for a := range sc.addrs {
		o.pinAddr(a)
	}
	for e := range sc.entries {
		o.pinEntry(setName(e.set, o.family), e.entry)
	}
}

func (o *observedState) pinService(key ipvs.ServiceKey) {
	if _, ok := o.services[key]; ok {
		return
	}
	o.services[key] = o.service(key)
	o.pinnedServices = append(o.pinnedServices, key)
}

func (o *observedState) pinAddr(a netip.Addr) {
	if _, ok := o.bound[a]; ok {
		return
	}
	o.bound[a] = o.isBound(a)
	o.pinnedAddrs = append(o.pinnedAddrs, a)
}

func (o *observedState) pinEntry(set string, e ipset.Entry) {
	s := o.sets[set]
	if s == nil || s.whole {
		return
	}
	if _, ok := s.entries[e]; ok {
		return
	}
	s.entries[e] = o.inSet(s, e)
	o.pinnedEntries = append(o.pinnedEntries, setEntry{set, e})
}

// assumeWritten turns a state just read (nothing implied), which a full
// sync's plan was made against, into its differences from d as they will
// be once the plan is applied: what matches d is dropped, what d wants and
// the kernel lacks is implied, as the plan adds it. The applier records
// what it failed to add.
func (o *observedState) assumeWritten(d *desiredState) {
	o.implied = d
	o.fold(true)
}

// fold drops the entries that say what the desired state implies: every
// one after a full sync (all), else the keys pinned since the last fold.
func (o *observedState) fold(all bool) {
	if all {
		o.foldAll()
	} else {
		o.foldPinned()
	}
	o.pinnedServices, o.pinnedAddrs, o.pinnedEntries = o.pinnedServices[:0], o.pinnedAddrs[:0], o.pinnedEntries[:0]
}

func (o *observedState) foldAll() {
	d := o.implied
	for key, s := range o.services {
		if sameAsWanted(d.service(key), s) {
			delete(o.services, key)
		}
	}
	for a, b := range o.bound {
		if d.bound.has(a) == b {
			delete(o.bound, a)
		}
	}
	for _, s := range o.sets {
		o.foldSet(s)
	}
	// A map keeps the room of its largest size: after a repair, most
	// entries were dropped.
	o.services, o.bound = shrunk(o.services), shrunk(o.bound)
}

// foldSet drops the members d implies.
func (o *observedState) foldSet(s *observedSet) {
	s.whole = false
	for e, in := range s.entries {
		if o.implied.wants(s.name, e) == in {
			delete(s.entries, e)
		}
	}
	s.entries = shrunk(s.entries)
}

// shrunk copies m into a map of its size (maps.Clone keeps the room).
func shrunk[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (o *observedState) foldPinned() {
	d := o.implied
	for _, key := range o.pinnedServices {
		if s, ok := o.services[key]; ok && sameAsWanted(d.service(key), s) {
			delete(o.services, key)
		}
	}
	for _, a := range o.pinnedAddrs {
		if b, ok := o.bound[a]; ok && d.bound.has(a) == b {
			delete(o.bound, a)
		}
	}
	for _, e := range o.pinnedEntries {
		s := o.sets[e.set]
		if s == nil || s.whole {
			continue
		}
		if in, ok := s.entries[e.entry]; ok && d.wants(s.name, e.entry) == in {
			delete(s.entries, e.entry)
		}
	}
}
