package ipvs

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Reasons a real server is deleted (the metric's label).
const (
	reasonImmediate = "immediate"
	reasonDrained   = "drained"
	reasonNotTCP    = "udp"
	// reasonStale: found at weight 0 by the first sync after a start (an
	// earlier run parked it) and deleted then, for any reason above.
	reasonStale = "stale"
)

// destChange is one real server to add, re-weight or delete. It points to
// its wanted service rather than copying its key and name.
type destChange struct {
	want   *wantedService
	dest   ipvs.Destination
	reason string // for deletions
	// unlessInFlight defers the deletion while a connection to the real
	// server is still open (checkInFlight).
	unlessInFlight bool
}

// key is the virtual server of the change.
func (c *destChange) key() ipvs.ServiceKey { return c.want.service.ServiceKey }

// setEntry is one member of one set (kernel name).
type setEntry struct {
	set   string
	entry ipset.Entry
}

// plan is the difference between the desired and the observed state, as
// the list of kernel operations that closes it.
type plan struct {
	createSets  []ipset.Set
	destroySets []string // ours, with the wrong type: destroyed then created
	addEntries  []setEntry
	delEntries  []setEntry

	bind, unbind []netip.Addr

	addServices    []*wantedService // with all their wanted real servers
	updateServices []ipvs.Service
	deleteServices []*observedService

	addDests     []destChange
	reweighDests []destChange // back to weight 1, or down to 0 to drain
	deleteDests  []destChange

	// conntrack are the entries to flush once the real servers are gone.
	conntrack []conntrack.Filter

	// finishing are real servers the immediate policy retires but keeps,
	// at weight 0, while their established connections finish.
	finishing []destRef
}

// destRef names one real server of one virtual server.
type destRef struct {
	svc  ipvs.ServiceKey
	dest ipvs.DestinationKey
}

// planInput carries what the diff needs besides the two states.
type planInput struct {
	desired   *desiredState
	observed  *observedState
	cfg       *Config
	firstSync bool
	// scope limits the diff to what changed; nil compares everything.
	scope *scope
	// finishingSince is when each finishing real server started finishing.
	finishingSince map[destRef]time.Time
	now            time.Time
}

// finishes says whether a real server the immediate policy retires is kept
// a little longer: it may finish (mayFinish) and connections are still
// established to it, which its deletion would break. It is deleted once
// they are done or FinishGrace has passed.
func (in planInput) finishes(key ipvs.ServiceKey, d ipvs.Destination) bool {
	return d.ActiveConn > 0 && in.mayFinish(key, d)
}

// mayFinish says whether a real server the immediate policy retires may be
// kept while its connections finish: it was draining at weight 0 (its pod
// still served while it terminated, so the pod may still be alive) and its
// FinishGrace has not passed.
func (in planInput) mayFinish(key ipvs.ServiceKey, d ipvs.Destination) bool {
	if in.firstSync || in.cfg.FinishGrace <= 0 || key.Protocol != ipvs.TCP || d.Weight != 0 {
		return false
	}
	since, ok := in.finishingSince[destRef{key, d.DestinationKey}]
	return !ok || in.now.Sub(since) < in.cfg.FinishGrace
}

// makePlan diffs desired against observed; it touches nothing.
func makePlan(in planInput) *plan {
	p := &plan{}
	if in.scope == nil {
		p.diffAllSets(in)
		p.diffAllAddresses(in)
		p.diffAllServices(in)
	} else {
		p.diffScope(in)
	}
	p.checkInFlight(in)
	p.sort()
	return p
}

// diffAllSets checks every set we own: header, and every member both ways.
func (p *plan) diffAllSets(in planInput) {
	p.addEntries = make([]setEntry, 0, missingEntries(in))
	for _, def := range setDefinitions() {
		want := kernelSet(def, in.cfg.IPFamily)
		have := in.observed.sets[want.Name]
		if have != nil && have.set.Type != want.Type {
			p.destroySets = append(p.destroySets, want.Name)
			have = nil
		}
		if have == nil {
			p.createSets = append(p.createSets, want)
			have = &observedSet{whole: true}
		}
		for e, present := range have.entries {
			if present && !in.desired.wants(def.name, e) {
				p.delEntries = append(p.delEntries, setEntry{want.Name, e})
			}
		}
		for e := range in.desired.members(def.name) {
			if !in.observed.inSet(have, e) {
				p.addEntries = append(p.addEntries, setEntry{want.Name, e})
			}
		}
	}
}

// missingEntries counts about the set members a full sync adds: every
// wanted one of a set the kernel lacks, the recorded absent ones of others.
func missingEntries(in planInput) int {
	n := 0
	for _, def := range setDefinitions() {
		s := in.observed.sets[setName(def.name, in.cfg.IPFamily)]
		if s == nil {
			n += in.desired.setSize(def.name)
			continue
		}
		for _, present := range s.entries {
			if !present {
				n++
			}
		}
	}
	return n
}

func (p *plan) diffAllAddresses(in planInput) {
	for a := range in.desired.bound.all {
		p.diffAddress(in, a)
	}
	for a, bound := range in.observed.bound {
		if bound && !in.desired.bound.has(a) {
			p.diffAddress(in, a)
		}
	}
}

func (p *plan) diffAddress(in planInput, a netip.Addr) {
	have := in.observed.isBound(a)
	want := in.desired.bound.has(a)
	switch {
	case want && !have:
		p.bind = append(p.bind, a)
	case have && !want:
		p.unbind = append(p.unbind, a)
	}
}

func (p *plan) diffAllServices(in planInput) {
	p.addServices = make([]*wantedService, 0, missing(in))
	for key := range in.desired.serviceKeys() {
		p.diffService(in, key)
	}
	for key, s := range in.observed.services {
		if s != nil && in.desired.service(key) == nil {
			p.diffService(in, key)
		}
	}
}

// missing counts the virtual servers a full sync adds, so that a first
// sync sizes its list once instead of growing it step by step.
func missing(in planInput) (services int) {
	for key := range in.desired.serviceKeys() {
		if !in.observed.hasService(key) {
			services++
		}
	}
	return services
}

// diffScope compares only the keys a partial sync touched.
func (p *plan) diffScope(in planInput) {
	for key := range in.scope.services {
		p.diffService(in, key)
	}
	for a := range in.scope.addrs {
		p.diffAddress(in, a)
	}
	for e := range in.scope.entries {
		name := setName(e.set, in.cfg.IPFamily)
		have := in.observed.hasEntry(name, e.entry)
		want := in.desired.wants(e.set, e.entry)
		switch {
		case want && !have:
			p.addEntries = append(p.addEntries, setEntry{name, e.entry})
		case have && !want:
			p.delEntries = append(p.delEntries, setEntry{name, e.entry})
		}
	}
}

func (p *plan) diffService(in planInput, key ipvs.ServiceKey) {
	want := in.desired.service(key)
	have, explicit := in.observed.lookupService(key)
	if !explicit {
		return // the kernel holds it as wanted
	}
	switch {
	case want == nil && have == nil:
	case want == nil:
		if containedIn(key.Address, in.cfg.ExcludeCIDRs) {
			return
		}
		p.deleteServices = append(p.deleteServices, have)
		for _, d := range have.list() {
			p.flushConntrack(key, d.DestinationKey, in.desired.immediateForGone(key, in.cfg))
		}
	case have == nil:
		// Its real servers are added with it (no destChange each: a first
		// sync would hold one per real server of the node).
		p.addServices = append(p.addServices, want)
	default:
		if !sameService(want.service, have.service) {
			p.updateServices = append(p.updateServices, want.service)
		}
		p.diffDests(in, want, have.list())
	}
}

// sameService compares what we set; the kernel adds FlagHashed, and the
// timeout and netmask matter only for persistent services.
func sameService(want, have ipvs.Service) bool {
	if want.Scheduler != have.Scheduler || want.Flags&^ipvs.FlagHashed != have.Flags&^ipvs.FlagHashed {
		return false
	}
	if want.Flags&ipvs.FlagPersistent != 0 {
		return want.Timeout == have.Timeout
	}
	return true
}

func (p *plan) diffDests(in planInput, want *wantedService, have destList) {
	for _, d := range have {
		if want.dests.has(d.DestinationKey) {
			if d.Weight != 1 {
				p.reweighDests = append(p.reweighDests, destChange{want: want, dest: withWeight(d, 1)})
			}
			continue
		}
		p.retire(in, want, d)
	}
	for i := range want.dests.len() {
		if dk := want.dests.at(i); !have.has(dk) {
			p.addDests = append(p.addDests, destChange{want: want, dest: ipvs.Destination{DestinationKey: dk, Weight: 1}})
		}
	}
}

// retire handles a real server whose endpoint is no longer used. Under the
// immediate policy, one whose endpoint is going away (gone from every
// EndpointSlice, terminating and no longer serving, or not ready on a lost
// node) is deleted now, unless requests are still in flight to it (see
// finishes). Every other one retires as upstream's does: non-TCP deleted
// now, TCP parked at weight 0 and deleted once it has no connections. That
// holds on the first sync after a start too: a weight-0 leftover of an
// earlier run is deleted then only when idle or going away ("stale").
func (p *plan) retire(in planInput, want *wantedService, d ipvs.Destination) {
	key := want.service.ServiceKey
	change := destChange{want: want, dest: d}
	immediate := want.immediate() && !want.gracefulKeys().has(d.DestinationKey) && !want.podAlive(d.Address)
	switch {
	case immediate && in.finishes(key, d):
		p.finishing = append(p.finishing, destRef{key, d.DestinationKey})
		return
	case immediate:
		change.reason = reasonImmediate
	case key.Protocol != ipvs.TCP:
		change.reason = reasonNotTCP
	case d.ActiveConn+d.InactiveConn == 0:
		change.reason = reasonDrained
	case d.Weight != 0:
		p.reweighDests = append(p.reweighDests, destChange{want: want, dest: withWeight(d, 0)})
		return
	default:
		return // draining at weight 0
	}
	if in.firstSync && d.Weight == 0 {
		change.reason = reasonStale // parked by an earlier run
	}
	p.deleteDests = append(p.deleteDests, change)
	p.flushConntrack(key, d.DestinationKey, immediate)
}

// flushConntrack schedules the deletion of the conntrack entries from the
// service address to a removed endpoint: always for UDP (upstream clears
// stale UDP flows too), for every protocol under the immediate policy.
func (p *plan) flushConntrack(svc ipvs.ServiceKey, dest ipvs.DestinationKey, immediate bool) {
	if !immediate && svc.Protocol != ipvs.UDP {
		return
	}
	p.conntrack = append(p.conntrack, flowsTo(destRef{svc, dest}))
}

// flowsTo is the conntrack filter of the flows from a virtual server to
// one of its real servers.
func flowsTo(ref destRef) conntrack.Filter {
	return conntrack.Filter{
		Protocol:     protoNumber(ref.svc.Protocol),
		OrigDst:      ref.svc.Address,
		OrigDstPort:  ref.svc.Port,
		ReplySrc:     ref.dest.Address,
		ReplySrcPort: ref.dest.Port,
	}
}

func protoNumber(p ipvs.Protocol) uint8 {
	switch p {
	case ipvs.UDP:
		return conntrack.ProtoUDP
	case ipvs.SCTP:
		return conntrack.ProtoSCTP
	default:
		return conntrack.ProtoTCP
	}
}

func withWeight(d ipvs.Destination, w int) ipvs.Destination {
	d.Weight = w
	return d
}

// sort makes the plan's order (and so logs and fake call order) stable.
func (p *plan) sort() {
	sortAddrs(p.bind)
	sortAddrs(p.unbind)
	sort.Slice(p.addServices, func(i, j int) bool {
		return keyLess(p.addServices[i].service.ServiceKey, p.addServices[j].service.ServiceKey)
	})
	sort.Slice(p.updateServices, func(i, j int) bool {
		return keyLess(p.updateServices[i].ServiceKey, p.updateServices[j].ServiceKey)
	})
	sort.Slice(p.deleteServices, func(i, j int) bool {
		return keyLess(p.deleteServices[i].service.ServiceKey, p.deleteServices[j].service.ServiceKey)
	})
	for _, l := range [][]destChange{p.addDests, p.reweighDests, p.deleteDests} {
		slices.SortFunc(l, destCompare)
	}
	for _, l := range [][]setEntry{p.addEntries, p.delEntries} {
		sort.Slice(l, func(i, j int) bool {
			if l[i].set != l[j].set {
				return l[i].set < l[j].set
			}
			return entryLess(l[i].entry, l[j].entry)
		})
	}
}

func sortAddrs(a []netip.Addr) { sort.Slice(a, func(i, j int) bool { return a[i].Less(a[j]) }) }

func keyLess(a, b ipvs.ServiceKey) bool {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c < 0
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	return a.Port < b.Port
}

func destCompare(a, b destChange) int {
	if ka, kb := a.key(), b.key(); ka != kb {
		if keyLess(ka, kb) {
			return -1
		}
		return 1
	}
	if c := a.dest.Address.Compare(b.dest.Address); c != 0 {
		return c
	}
	return int(a.dest.Port) - int(b.dest.Port)
}
