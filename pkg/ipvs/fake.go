package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kernel defaults of the IPVS timeouts (ipvsadm -L --timeout on a fresh
// namespace).
const (
	defaultTCPTimeout    = 900 * time.Second
	defaultTCPFinTimeout = 120 * time.Second
	defaultUDPTimeout    = 300 * time.Second
)

// Fake is an in-memory IPVS table as strict as the kernel's: it answers
// with the errnos Linux gives (EEXIST for duplicates, ESRCH matching ENOENT
// for a missing virtual server, ENOENT for a missing real server, ENOENT
// for an unknown scheduler, EINVAL for an IPv6 netmask outside 1..128,
// ERANGE for a negative weight) and sets FlagHashed on stored services.
type Fake struct {
	// Inject, when set, is called before every mutating call with the
	// method name ("AddService", "DeleteDestination", "Flush",
	// "SetTimeouts", ...) and the object: "TCP 10.0.0.1:80" for a service,
	// "TCP 10.0.0.1:80 -> 10.1.0.1:8080" for a real server, "all" for
	// Flush, "timeouts" for SetTimeouts. A non-nil error fails the call
	// without a change. It must not call the Fake.
	Inject func(op, object string) error
	// Calls counts the calls of every Interface method, by name.
	Calls map[string]int

	mu       sync.Mutex
	services map[ServiceKey]*fakeService
	timeouts Timeouts
	conns    []Connection
}

type fakeService struct {
	service Service
	// destinations are sorted by key: a slice keeps a large table small
	// (the benchmarks hold 300k real servers).
	destinations []Destination
}

func (fs *fakeService) find(k DestinationKey) (int, bool) {
	return slices.BinarySearchFunc(fs.destinations, k, func(d Destination, k DestinationKey) int {
		return compareDestinationKeys(d.DestinationKey, k)
	})
}

var _ Interface = (*Fake)(nil)

// NewFake returns an empty table with the kernel's default timeouts.
func NewFake() *Fake {
	return &Fake{
		Calls:    map[string]int{},
		services: map[ServiceKey]*fakeService{},
		timeouts: Timeouts{TCP: defaultTCPTimeout, TCPFin: defaultTCPFinTimeout, UDP: defaultUDPTimeout},
	}
}

// count records a call of method and returns with f.mu held.
func (f *Fake) count(method string) {
	f.mu.Lock()
	f.Calls[method]++
}

// begin records a mutating call, asks Inject, and returns with f.mu held
// when the call may go on; on an injected error f.mu is released.
func (f *Fake) begin(method, object string) error {
	return f.beginNamed(method, func() string { return object })
}

// beginNamed is begin naming the object only for Inject: a real server's
// name costs more than its write (a first sync makes 100k of them), and
// the kernel builds none.
func (f *Fake) beginNamed(method string, object func() string) error {
	f.count(method)
	inject := f.Inject
	if inject == nil {
		return nil
	}
	f.mu.Unlock()
	if err := inject(method, object()); err != nil {
		return err
	}
	f.mu.Lock()
	return nil
}

func (f *Fake) List() ([]VirtualServer, error) {
	f.count("List")
	defer f.mu.Unlock()
	return f.snapshot(), nil
}

func (f *Fake) ListFamily(ipv6 bool) ([]VirtualServer, error) {
	f.count("ListFamily")
	defer f.mu.Unlock()
	return slices.DeleteFunc(f.snapshot(), func(vs VirtualServer) bool { return vs.Address.Is6() != ipv6 }), nil
}

// Destinations is part of Interface.
func (f *Fake) Destinations(svc ServiceKey) ([]Destination, error) {
	f.count("Destinations")
	defer f.mu.Unlock()
	if err := checkServiceKey(svc); err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", svc, err)
	}
	fs, ok := f.services[svc]
	if !ok {
		return nil, nil // the kernel's dump of a missing service is empty
	}
	return slices.Clone(fs.destinations), nil
}

func (f *Fake) snapshot() []VirtualServer {
	vss := make([]VirtualServer, 0, len(f.services))
	for _, fs := range f.services {
		vss = append(vss, VirtualServer{
			Service:      fs.service,
			Destinations: slices.Clone(fs.destinations),
		})
	}
	sortVirtualServers(vss)
	return vss
}

func (f *Fake) AddService(s Service) error {
	if err := f.begin("AddService", s.ServiceKey.String()); err != nil {
		return fmt.Errorf("add virtual server %s: %w", s.ServiceKey, err)
	}
	defer f.mu.Unlock()
	if err := checkServiceKey(s.ServiceKey); err != nil {
		return fmt.Errorf("add virtual server %s: %w", s.ServiceKey, err)
	}
	if _, ok := f.services[s.ServiceKey]; ok {
		return fmt.Errorf("add virtual server %s: %w", s.ServiceKey, syscall.EEXIST)
	}
	if err := f.checkNewService(s); err != nil {
		return fmt.Errorf("add virtual server %s: %w", s.ServiceKey, err)
	}
	s.Flags |= FlagHashed
	f.services[s.ServiceKey] = &fakeService{service: s}
	return nil
}

func (f *Fake) UpdateService(s Service) error {
	if err := f.begin("UpdateService", s.ServiceKey.String()); err != nil {
		return fmt.Errorf("update virtual server %s: %w", s.ServiceKey, err)
	}
	defer f.mu.Unlock()
	fs, err := f.lookupService(s.ServiceKey)
	if err == nil {
		err = f.checkNewService(s)
	}
	if err != nil {
		return fmt.Errorf("update virtual server %s: %w", s.ServiceKey, err)
	}
	s.Flags |= FlagHashed
	fs.service = s
	return nil
}

func (f *Fake) DeleteService(key ServiceKey) error {
	if err := f.begin("DeleteService", key.String()); err != nil {
		return fmt.Errorf("delete virtual server %s: %w", key, err)
	}
	defer f.mu.Unlock()
	if _, err := f.lookupService(key); err != nil {
		return fmt.Errorf("delete virtual server %s: %w", key, err)
	}
	delete(f.services, key)
	f.dropConnections(key, DestinationKey{})
	return nil
}

// checkNewService rejects the options the kernel's ip_vs_add_service and
// ip_vs_edit_service reject.
func (f *Fake) checkNewService(s Service) error {
	if !knownScheduler(s.Scheduler) {
		return fmt.Errorf("scheduler %q: %w", s.Scheduler, syscall.ENOENT)
	}
	if s.Address.Is6() && (s.Netmask < 1 || s.Netmask > 128) {
		return fmt.Errorf("IPv6 netmask %d: %w", s.Netmask, syscall.EINVAL)
	}
	return nil
}

// lookupService finds a service as the kernel does for every command but
// an add: a missing one is ESRCH (matching ENOENT too).
func (f *Fake) lookupService(key ServiceKey) (*fakeService, error) {
	if err := checkServiceKey(key); err != nil {
		return nil, err
	}
	fs, ok := f.services[key]
	if !ok {
		return nil, missingServiceError{}
	}
	return fs, nil
}

// unicast tells the addresses the kernel's ip_vs_new_dest accepts for a
// new real server from the ones it rejects with EINVAL.
func unicast(a netip.Addr) bool {
	zeroNet := a.Is4() && a.As4()[0] == 0
	broadcast := a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
	return !zeroNet && !broadcast && !a.IsMulticast() && !a.IsUnspecified()
}

// knownScheduler lists the schedulers Linux ships (ip_vs_*.ko) and "none".
func knownScheduler(name string) bool {
	switch name {
	case "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos", "none":
		return true
	}
	return false
}

func (f *Fake) AddDestination(svc ServiceKey, d Destination) error {
	name := func() string { return destinationName(svc, d.DestinationKey) }
	if err := f.beginNamed("AddDestination", name); err != nil {
		return fmt.Errorf("add real server %s: %w", name(), err)
	}
	defer f.mu.Unlock()
	fs, err := f.lookupDestinationService(svc, d)
	if err != nil {
		return fmt.Errorf("add real server %s: %w", name(), err)
	}
	i, found := fs.find(d.DestinationKey)
	if found {
		return fmt.Errorf("add real server %s: %w", name(), syscall.EEXIST)
	}
	if !unicast(d.Address) {
		return fmt.Errorf("add real server %s: not a unicast address: %w", name(), syscall.EINVAL)
	}
	fs.destinations = slices.Insert(fs.destinations, i, Destination{DestinationKey: d.DestinationKey, Weight: d.Weight})
	return nil
}

func (f *Fake) UpdateDestination(svc ServiceKey, d Destination) error {
	name := func() string { return destinationName(svc, d.DestinationKey) }
	if err := f.beginNamed("UpdateDestination", name); err != nil {
		return fmt.Errorf("update real server %s: %w", name(), err)
	}
	defer f.mu.Unlock()
	fs, err := f.lookupDestinationService(svc, d)
	if err != nil {
		return fmt.Errorf("update real server %s: %w", name(), err)
	}
	i, found := fs.find(d.DestinationKey)
	if !found {
		return fmt.Errorf("update real server %s: %w", name(), syscall.ENOENT)
	}
	fs.destinations[i].Weight = d.Weight // connection counts are the kernel's, not ours
	return nil
}

func (f *Fake) DeleteDestination(svc ServiceKey, dst DestinationKey) error {
	name := func() string { return destinationName(svc, dst) }
	if err := f.beginNamed("DeleteDestination", name); err != nil {
		return fmt.Errorf("delete real server %s: %w", name(), err)
	}
	defer f.mu.Unlock()
	fs, err := f.lookupDestinationService(svc, Destination{DestinationKey: dst})
	if err != nil {
		return fmt.Errorf("delete real server %s: %w", name(), err)
	}
	i, found := fs.find(dst)
	if !found {
		return fmt.Errorf("delete real server %s: %w", name(), syscall.ENOENT)
	}
	fs.destinations = slices.Delete(fs.destinations, i, i+1)
	f.dropConnections(svc, dst)
	return nil
}

// lookupDestinationService checks a real-server command the way the
// kernel's ip_vs_genl_set_cmd does: the service must exist, the weight
// must not be negative.
func (f *Fake) lookupDestinationService(svc ServiceKey, d Destination) (*fakeService, error) {
	if err := checkDestinationKey(svc, d.DestinationKey); err != nil {
		return nil, err
	}
	fs, err := f.lookupService(svc)
	if err != nil {
		return nil, err
	}
	if d.Weight < 0 {
		return nil, fmt.Errorf("weight %d: %w", d.Weight, syscall.ERANGE)
	}
	return fs, nil
}

func (f *Fake) Flush() error {
	if err := f.begin("Flush", "all"); err != nil {
		return fmt.Errorf("flush virtual servers: %w", err)
	}
	defer f.mu.Unlock()
	clear(f.services)
	return nil
}

func (f *Fake) Timeouts() (Timeouts, error) {
	f.count("Timeouts")
	defer f.mu.Unlock()
	return f.timeouts, nil
}

func (f *Fake) SetTimeouts(t Timeouts) error {
	if err := f.begin("SetTimeouts", "timeouts"); err != nil {
		return fmt.Errorf("set IPVS timeouts %+v: %w", t, err)
	}
	defer f.mu.Unlock()
	if err := checkTimeouts(t); err != nil {
		return fmt.Errorf("set IPVS timeouts %+v: %w", t, err)
	}
	// Whole seconds, like the kernel.
	for _, set := range []struct{ from, to *time.Duration }{
		{&t.TCP, &f.timeouts.TCP}, {&t.TCPFin, &f.timeouts.TCPFin}, {&t.UDP, &f.timeouts.UDP},
	} {
		if *set.from != 0 {
			*set.to = set.from.Truncate(time.Second)
		}
	}
	return nil
}

// SetConnections sets a real server's connection counts, as traffic would
// (a test helper; not counted in Calls, not subject to Inject).
func (f *Fake) SetConnections(svc ServiceKey, dst DestinationKey, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := destinationName(svc, dst)
	fs, err := f.lookupService(svc)
	if err != nil {
		return fmt.Errorf("set connections of %s: %w", name, err)
	}
	i, found := fs.find(dst)
	if !found {
		return fmt.Errorf("set connections of %s: %w", name, syscall.ENOENT)
	}
	fs.destinations[i].ActiveConn, fs.destinations[i].InactiveConn = active, inactive
	return nil
}

// SetConnectionTable replaces the connection table, as traffic would (a
// test helper, like SetConnections: the counts are not derived from it).
// Deleting a real server or a virtual server drops its entries.
func (f *Fake) SetConnectionTable(conns []Connection) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = slices.Clone(conns)
}

// Connections is part of Interface.
func (f *Fake) Connections(fn func(Connection) bool) error {
	f.count("Connections")
	conns := slices.Clone(f.conns)
	f.mu.Unlock()
	for _, c := range conns {
		if !fn(c) {
			break
		}
	}
	return nil
}

// dropConnections deletes the entries of a virtual server (and of one of
// its real servers when dst is valid), as the kernel expires them.
func (f *Fake) dropConnections(svc ServiceKey, dst DestinationKey) {
	vip := netip.AddrPortFrom(svc.Address, svc.Port)
	rip := netip.AddrPortFrom(dst.Address, dst.Port)
	f.conns = slices.DeleteFunc(f.conns, func(c Connection) bool {
		return c.Protocol == svc.Protocol && c.Virtual == vip && (!dst.Address.IsValid() || c.Real == rip)
	})
}

// Dump renders the whole table (see FormatVirtualServers), then a
// "timeouts" line when they differ from the kernel's defaults.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	b.WriteString(FormatVirtualServers(f.snapshot()))
	if f.timeouts != (Timeouts{TCP: defaultTCPTimeout, TCPFin: defaultTCPFinTimeout, UDP: defaultUDPTimeout}) {
		fmt.Fprintf(&b, "timeouts tcp=%v tcpfin=%v udp=%v\n", f.timeouts.TCP, f.timeouts.TCPFin, f.timeouts.UDP)
	}
	return b.String()
}
