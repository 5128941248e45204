package ipvs

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync"
	"syscall"

	mobyipvs "github.com/moby/ipvs"
	"k8s.io/klog/v2"
)

// kernel is the IPVS table of the network namespace New was called in,
// programmed over one generic netlink socket.
type kernel struct {
	// mu serialises requests: replies on the shared socket are matched by
	// sequence number, and a reply read by the wrong caller is dropped.
	mu     sync.Mutex
	handle *mobyipvs.Handle
	// dump reads the virtual servers (nil when it could not be opened:
	// moby's GetServices does).
	dump *serviceSocket
	// conns is /proc/net/ip_vs_conn of that namespace, opened with it (a
	// proc file shows the namespace of the thread that opened it).
	conns    *os.File
	connsErr error
	// table is /proc/net/ip_vs of that namespace, opened the same way: one
	// read of it gives every virtual server's real servers, where netlink
	// takes a dump per virtual server.
	table    *os.File
	tableErr error
}

// New opens the IPVS table of the calling thread's network namespace. It
// fails when the kernel has no IPVS.
func New() (Interface, error) {
	// moby/ipvs panics on its first request when the kernel has no IPVS
	// (no IPVS generic netlink family): check first.
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		return nil, fmt.Errorf("IPVS is not available in this kernel (is the ip_vs module loaded?): %w", err)
	}
	handle, err := mobyipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	if _, err := handle.GetConfig(); err != nil {
		handle.Close()
		return nil, fmt.Errorf("read IPVS timeouts (is ip_vs loaded?): %w", err)
	}
	dump, err := openServiceSocket()
	if err != nil {
		klog.V(2).InfoS("Listing virtual servers with moby's GetServices", "err", err)
	}
	// Without it only Connections fails (its callers can do without).
	conns, connsErr := os.Open("/proc/thread-self/net/ip_vs_conn")
	table, tableErr := os.Open("/proc/thread-self/net/ip_vs")
	return &kernel{handle: handle, dump: dump, conns: conns, connsErr: connsErr, table: table, tableErr: tableErr}, nil
}

// Connections reads the table from the start each time (a seq file
// regenerates its text on each read from offset 0).
func (k *kernel) Connections(f func(Connection) bool) error {
	if k.connsErr != nil {
		return fmt.Errorf("open IPVS connection table: %w", k.connsErr)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.conns.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read IPVS connection table: %w", err)
	}
	return parseConnections(k.conns, f)
}

func (k *kernel) List() ([]VirtualServer, error) {
	return k.list(bothFamilies)
}

func (k *kernel) ListFamily(ipv6 bool) ([]VirtualServer, error) {
	return k.list(familiesOf(ipv6))
}

// list reads the virtual servers pick wants, with their real servers:
// the virtual servers from one netlink dump (their options are not all in
// /proc/net/ip_vs), their real servers from one read of /proc/net/ip_vs.
// Where that read fails, or misses a virtual server of the dump (added while
// it ran), the real servers come from a netlink dump of that virtual server.
func (k *kernel) list(pick families) ([]VirtualServer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	services, err := k.services(pick)
	if err != nil {
		return nil, fmt.Errorf("list virtual servers: %w", kernelError(err))
	}
	vss := services.vss
	if len(vss) == 0 {
		// A family without virtual servers (IPv6 on most dual-stack
		// nodes) does not read the other family's real servers.
		return vss, nil
	}
	table, err := k.readTable()
	if err != nil {
		klog.V(2).InfoS("Reading real servers over netlink instead", "err", err)
	}
	missing := 0
	for i := range vss {
		key := vss[i].ServiceKey
		dsts, ok := table[key]
		if !ok {
			if dsts, err = k.destinations(services.request(i)); err != nil {
				return nil, fmt.Errorf("list real servers of %s: %w", key, err)
			}
			missing++
		}
		vss[i].Destinations = dsts
	}
	if missing > 0 && table != nil {
		// Added while the text was read, or skipped by the kernel's seq
		// file on 6.1 when other namespaces have virtual servers (its
		// position at each read counts theirs).
		klog.V(2).InfoS("Virtual servers missing from /proc/net/ip_vs, their real servers dumped one by one", "missing", missing, "virtualServers", len(vss))
	}
	sortVirtualServers(vss)
	return vss, nil
}

// services reads the virtual servers pick wants: from our own dump, or
// from moby's GetServices when its socket could not be opened.
func (k *kernel) services(pick families) (dumped, error) {
	if k.dump != nil {
		return k.dump.services(pick)
	}
	return k.mobyServices(pick)
}

// mobyServices is services over moby's GetServices.
func (k *kernel) mobyServices(pick families) (dumped, error) {
	services, err := k.handle.GetServices()
	if err != nil {
		return dumped{}, err
	}
	out := dumped{vss: make([]VirtualServer, 0, len(services))}
	for _, ms := range services {
		svc, ok := fromMobyService(ms)
		if !ok {
			klog.V(4).InfoS("Skipping IPVS service we do not manage", "address", ms.Address, "protocol", ms.Protocol, "port", ms.Port, "fwmark", ms.FWMark)
			continue
		}
		if pick.has(svc.Address) {
			out.add(dumpedService{Service: svc, family: ms.AddressFamily})
		}
	}
	return out, nil
}

// readTable reads /proc/net/ip_vs from its start (a seq file regenerates
// its text on each read from offset 0).
func (k *kernel) readTable() (map[ServiceKey][]Destination, error) {
	if k.tableErr != nil {
		return nil, fmt.Errorf("open IPVS table: %w", k.tableErr)
	}
	if _, err := k.table.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	return parseTable(k.table)
}

// destinations dumps one virtual server's real servers over netlink.
func (k *kernel) destinations(ms *mobyipvs.Service) ([]Destination, error) {
	dsts, err := k.handle.GetDestinations(ms)
	if err != nil {
		return nil, kernelError(err)
	}
	out := make([]Destination, 0, len(dsts))
	for _, md := range dsts {
		out = append(out, fromMobyDestination(md))
	}
	return out, nil
}

func (k *kernel) Destinations(svc ServiceKey) ([]Destination, error) {
	if err := checkServiceKey(svc); err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", svc, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out, err := k.destinations(toMobyService(Service{ServiceKey: svc}))
	if err != nil {
		return nil, fmt.Errorf("list real servers of %s: %w", svc, err)
	}
	sortDestinations(out)
	return out, nil
}

func (k *kernel) AddService(s Service) error {
	return k.serviceCmd("add", s, (*mobyipvs.Handle).NewService)
}

func (k *kernel) UpdateService(s Service) error {
	return k.serviceCmd("update", s, (*mobyipvs.Handle).UpdateService)
}

func (k *kernel) DeleteService(key ServiceKey) error {
	return k.serviceCmd("delete", Service{ServiceKey: key}, (*mobyipvs.Handle).DelService)
}

func (k *kernel) serviceCmd(op string, s Service, cmd func(*mobyipvs.Handle, *mobyipvs.Service) error) error {
	if err := checkServiceKey(s.ServiceKey); err != nil {
		return fmt.Errorf("%s virtual server %s: %w", op, s.ServiceKey, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := cmd(k.handle, toMobyService(s)); err != nil {
		return fmt.Errorf("%s virtual server %s: %w", op, s.ServiceKey, kernelError(err))
	}
	return nil
}

func (k *kernel) AddDestination(svc ServiceKey, d Destination) error {
	return k.destinationCmd("add", svc, d, (*mobyipvs.Handle).NewDestination)
}

func (k *kernel) UpdateDestination(svc ServiceKey, d Destination) error {
	return k.destinationCmd("update", svc, d, (*mobyipvs.Handle).UpdateDestination)
}

func (k *kernel) DeleteDestination(svc ServiceKey, dst DestinationKey) error {
	return k.destinationCmd("delete", svc, Destination{DestinationKey: dst}, (*mobyipvs.Handle).DelDestination)
}

func (k *kernel) destinationCmd(op string, svc ServiceKey, d Destination, cmd func(*mobyipvs.Handle, *mobyipvs.Service, *mobyipvs.Destination) error) error {
	if err := checkDestinationKey(svc, d.DestinationKey); err != nil {
		return fmt.Errorf("%s real server %s: %w", op, destinationName(svc, d.DestinationKey), err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := cmd(k.handle, toMobyService(Service{ServiceKey: svc}), toMobyDestination(d)); err != nil {
		return fmt.Errorf("%s real server %s: %w", op, destinationName(svc, d.DestinationKey), kernelError(err))
	}
	return nil
}

func (k *kernel) Flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.handle.Flush(); err != nil {
		return fmt.Errorf("flush virtual servers: %w", kernelError(err))
	}
	return nil
}

func (k *kernel) Timeouts() (Timeouts, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := k.handle.GetConfig()
	if err != nil {
		return Timeouts{}, fmt.Errorf("read IPVS timeouts: %w", err)
	}
	return Timeouts{TCP: c.TimeoutTCP, TCPFin: c.TimeoutTCPFin, UDP: c.TimeoutUDP}, nil
}

func (k *kernel) SetTimeouts(t Timeouts) error {
	if err := checkTimeouts(t); err != nil {
		return fmt.Errorf("set IPVS timeouts %+v: %w", t, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// The kernel leaves a timeout sent as zero unchanged.
	c := &mobyipvs.Config{TimeoutTCP: t.TCP, TimeoutTCPFin: t.TCPFin, TimeoutUDP: t.UDP}
	if err := k.handle.SetConfig(c); err != nil {
		return fmt.Errorf("set IPVS timeouts %+v: %w", t, err)
	}
	return nil
}

// protocolNumber maps a protocol name to its IPPROTO number (0 if unknown;
// callers have checked the name).
func protocolNumber(p Protocol) uint16 {
	switch p {
	case TCP:
		return syscall.IPPROTO_TCP
	case UDP:
		return syscall.IPPROTO_UDP
	case SCTP:
		return syscall.IPPROTO_SCTP
	}
	return 0
}

func protocolName(number uint16) (Protocol, bool) {
	for _, p := range []Protocol{TCP, UDP, SCTP} {
		if protocolNumber(p) == number {
			return p, true
		}
	}
	return "", false
}

func addressFamily(a netip.Addr) uint16 {
	if a.Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

func toMobyService(s Service) *mobyipvs.Service {
	return &mobyipvs.Service{
		Address:       s.Address.AsSlice(),
		Protocol:      protocolNumber(s.Protocol),
		Port:          s.Port,
		SchedName:     s.Scheduler,
		Flags:         s.Flags,
		Timeout:       s.Timeout,
		Netmask:       s.Netmask,
		AddressFamily: addressFamily(s.Address),
	}
}

// fromMobyService converts a kernel service; ok is false for services our
// types cannot hold (firewall-mark services, other protocols).
func fromMobyService(ms *mobyipvs.Service) (Service, bool) {
	if ms.FWMark != 0 {
		return Service{}, false
	}
	addr, addrOK := netip.AddrFromSlice(ms.Address)
	protocol, protocolOK := protocolName(ms.Protocol)
	if !addrOK || !protocolOK {
		return Service{}, false
	}
	return Service{
		ServiceKey: ServiceKey{Address: addr.Unmap(), Protocol: protocol, Port: ms.Port},
		Scheduler:  ms.SchedName,
		Flags:      ms.Flags,
		Timeout:    ms.Timeout,
		Netmask:    ms.Netmask,
	}, true
}

func toMobyDestination(d Destination) *mobyipvs.Destination {
	return &mobyipvs.Destination{
		Address:       d.Address.AsSlice(),
		Port:          d.Port,
		Weight:        d.Weight,
		AddressFamily: addressFamily(d.Address),
		// ConnectionFlags zero is masquerading (NAT), what kube-proxy uses.
	}
}

func fromMobyDestination(md *mobyipvs.Destination) Destination {
	addr, _ := netip.AddrFromSlice(md.Address)
	return Destination{
		DestinationKey: DestinationKey{Address: addr.Unmap(), Port: md.Port},
		Weight:         md.Weight,
		ActiveConn:     md.ActiveConnections,
		InactiveConn:   md.InactiveConnections,
	}
}
