package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"syscall"

	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// The IPVS generic netlink interface (include/uapi/linux/ip_vs.h), as far
// as the service dump uses it.
const (
	ipvsGenlName       = "IPVS"
	ipvsGenlVersion    = 1
	ipvsCmdGetService  = 4 // IPVS_CMD_GET_SERVICE
	ipvsCmdAttrService = 1 // IPVS_CMD_ATTR_SERVICE, nesting IPVS_SVC_ATTR_*

	ipvsSvcAttrAF        = 1  // u16
	ipvsSvcAttrProtocol  = 2  // u16
	ipvsSvcAttrAddr      = 3  // union nf_inet_addr (16 bytes; IPv4 in the first 4)
	ipvsSvcAttrPort      = 4  // be16
	ipvsSvcAttrFWMark    = 5  // u32
	ipvsSvcAttrSchedName = 6  // NUL-terminated string
	ipvsSvcAttrFlags     = 7  // struct ip_vs_flags {u32 flags; u32 mask}
	ipvsSvcAttrTimeout   = 8  // u32
	ipvsSvcAttrNetmask   = 9  // u32
	ipvsSvcAttrPEName    = 11 // string; not kept (Service has no persistence engine)
	ipvsSvcAttrMax       = 12 // IPVS_SVC_ATTR_STATS64, the last one read past

	genlHeaderLen = 4 // struct genlmsghdr
	attrHeaderLen = unix.SizeofRtAttr
	// nlaTypeMask clears NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff
)

// dumpAttempts bounds the retries of a service dump the kernel marked
// interrupted (NLM_F_DUMP_INTR), as the other dumps of this repository do.
const dumpAttempts = 5

// families picks virtual servers by the family of their address as read
// back (unmapped: an IPv6 virtual server at an IPv4-mapped address is
// IPv4, as fromMobyService has it).
type families uint8

const (
	bothFamilies families = iota
	onlyIPv4
	onlyIPv6
)

func familiesOf(ipv6 bool) families {
	if ipv6 {
		return onlyIPv6
	}
	return onlyIPv4
}

// has tells whether a virtual server at addr (unmapped) is picked.
func (f families) has(addr netip.Addr) bool {
	return f == bothFamilies || addr.Is6() == (f == onlyIPv6)
}

// mayHave tells whether a kernel service of address family af may be
// picked: an AF_INET6 one may be at an IPv4-mapped address, so only the
// IPv6 read can tell from the family alone.
func (f families) mayHave(af uint16) bool {
	return f != onlyIPv6 || af != unix.AF_INET
}

// dumpedService is a virtual server read from the dump.
type dumpedService struct {
	Service
	// family is the kernel's: AF_INET6 for an IPv6 virtual server at an
	// IPv4-mapped address, whose Service is IPv4 (unmapped).
	family uint16
}

// dumped are the virtual servers a dump gave, their real servers not read
// yet.
type dumped struct {
	vss []VirtualServer
	// mapped are the indexes in vss of IPv6 virtual servers at IPv4-mapped
	// addresses, read back as IPv4 (nil when there are none).
	mapped map[int]bool
}

func (d *dumped) add(s dumpedService) {
	if s.family == unix.AF_INET6 && s.Address.Is4() {
		if d.mapped == nil {
			d.mapped = map[int]bool{}
		}
		d.mapped[len(d.vss)] = true
	}
	d.vss = append(d.vss, VirtualServer{Service: s.Service})
}

// request is virtual server i as the kernel knows it, for a dump of its
// real servers over moby's handle (which sends an IPv4-mapped address as
// 4 bytes: such a dump finds none, as before this dump was ours).
func (d *dumped) request(i int) *mobyipvs.Service {
	svc := d.vss[i].Service
	family, addr := uint16(unix.AF_INET), svc.Address
	if addr.Is6() || d.mapped[i] {
		family, addr = unix.AF_INET6, netip.AddrFrom16(addr.As16())
	}
	return &mobyipvs.Service{AddressFamily: family, Address: addr.AsSlice(), Protocol: protocolNumber(svc.Protocol), Port: svc.Port}
}

// serviceSocket dumps the virtual servers over a generic netlink socket of
// its own, decoding the answer in place: moby's GetServices decodes every
// attribute of every service (stats included) into attribute slices, a
// net.IP and an *ipvs.Service (0.89 s of 11.2 s of an idle minute's CPU at
// 5k Services in the VM), and the IPv6 read threw the IPv4 ones away.
// Callers serialise its use.
type serviceSocket struct {
	fd     int
	family uint16 // the IPVS generic netlink family's id
	seq    uint32
	// sizes are the last dump's counts by families picked, the next one's
	// capacity (growing a slice of 5k virtual servers copied 1 MB).
	sizes [onlyIPv6 + 1]int
	// buf receives the answers (made on the first read), grown for a
	// batch that would not fit.
	buf []byte
}

// openServiceSocket opens the socket in the calling thread's network
// namespace, with the timeouts the netlink library gives its sockets.
func openServiceSocket() (*serviceSocket, error) {
	f, err := netlink.GenlFamilyGet(ipvsGenlName)
	if err != nil {
		return nil, fmt.Errorf("resolve the IPVS generic netlink family: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open a generic netlink socket: %w", err)
	}
	for _, opt := range []int{unix.SO_SNDTIMEO, unix.SO_RCVTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &nl.SocketTimeoutTv); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("set the generic netlink socket's timeouts: %w", err)
		}
	}
	s := &serviceSocket{fd: fd, family: f.ID}
	// Closed with the table, as moby's socket and the proc files are (by
	// their os.File's finalizer): the socket holds its network namespace,
	// whose virtual servers would otherwise outlive it (a test's table, in
	// the kernel's shared hash, skews other namespaces' reads of
	// /proc/net/ip_vs).
	runtime.AddCleanup(s, func(fd int) { unix.Close(fd) }, fd)
	return s, nil
}

// services reads the virtual servers pick wants, dumping again when the
// kernel interrupted the dump.
func (s *serviceSocket) services(pick families) (dumped, error) {
	var err error
	for range dumpAttempts {
		var out dumped
		if out, err = s.dump(pick); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return dumped{}, fmt.Errorf("dump interrupted %d times in a row: %w", dumpAttempts, err)
}

// dump sends one IPVS_CMD_GET_SERVICE dump request and reads its answer.
func (s *serviceSocket) dump(pick families) (dumped, error) {
	s.seq++
	req := serviceDumpRequest(s.family, s.seq)
	if err := unix.Sendto(s.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return dumped{}, fmt.Errorf("send the dump request: %w", err)
	}
	r := newServiceReader(s.family, s.seq, pick, s.sizes[pick])
	for !r.done {
		batch, err := netlinkbatch.Next(s.fd, &s.buf)
		if err != nil {
			return dumped{}, fmt.Errorf("read the dump: %w", err)
		}
		if err := r.parse(batch); err != nil {
			return dumped{}, err
		}
	}
	if r.interrupted {
		return dumped{}, netlink.ErrDumpInterrupted
	}
	s.sizes[pick] = len(r.services.vss)
	return r.services, nil
}

// serviceDumpRequest is an nlmsghdr and a genlmsghdr, no attribute (the
// kernel's dump of services reads none).
func serviceDumpRequest(family uint16, seq uint32) []byte {
	req := make([]byte, unix.NLMSG_HDRLEN+genlHeaderLen)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], family)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], seq)
	req[unix.NLMSG_HDRLEN] = ipvsCmdGetService
	req[unix.NLMSG_HDRLEN+1] = ipvsGenlVersion
	return req
}

// serviceReader is a service dump being read, batch by batch.
type serviceReader struct {
	family      uint16 // the messages' type: the IPVS family's id
	seq         uint32
	pick        families
	services    dumped
	done        bool
	interrupted bool
}

// newServiceReader reads the answer to request seq, with room for size
// virtual servers.
func newServiceReader(family uint16, seq uint32, pick families, size int) *serviceReader {
	return &serviceReader{family: family, seq: seq, pick: pick, services: dumped{vss: make([]VirtualServer, 0, size)}}
}

// parse takes in one batch of the answer, decoded in place.
func (r *serviceReader) parse(b []byte) error {
	done, interrupted, err := netlinkbatch.Walk(b, r.seq, r.take)
	r.done, r.interrupted = r.done || done, r.interrupted || interrupted
	return err
}

// take decodes a message of the service dump; the last one of the answer
// ends it unless it is multipart (NLMSG_DONE ends a multipart one).
func (r *serviceReader) take(kind, flags uint16, payload []byte) (bool, error) {
	if kind != r.family {
		return false, nil
	}
	svc, ok, err := decodeServiceMessage(payload, r.pick)
	if err != nil {
		return false, fmt.Errorf("decode virtual server %d of the dump: %w", len(r.services.vss)+1, err)
	}
	if ok {
		r.services.add(svc)
	}
	return flags&unix.NLM_F_MULTI == 0, nil
}

// decodeServiceMessage decodes one message of the dump: a genlmsghdr,
// then IPVS_CMD_ATTR_SERVICE nesting the service's attributes. ok is false
// for a service pick does not want or that our types cannot hold.
func decodeServiceMessage(payload []byte, pick families) (svc dumpedService, ok bool, err error) {
	if len(payload) < genlHeaderLen {
		return svc, false, fmt.Errorf("a message of %d bytes: %w", len(payload), syscall.EBADMSG)
	}
	attrs := payload[genlHeaderLen:]
	for len(attrs) >= attrHeaderLen {
		var kind uint16
		var value []byte
		if kind, value, attrs, err = nextAttr(attrs); err != nil {
			return svc, false, err
		}
		if kind == ipvsCmdAttrService {
			return decodeService(value, pick)
		}
	}
	return svc, false, fmt.Errorf("no service attribute: %w", syscall.EBADMSG)
}

// nextAttr is netlinkbatch.NextAttr with the type's flags cleared.
func nextAttr(b []byte) (kind uint16, value, rest []byte, err error) {
	kind, value, rest, err = netlinkbatch.NextAttr(b)
	return kind & nlaTypeMask, value, rest, err
}

// serviceAttrNames name the attributes read, for errors.
var serviceAttrNames = [...]string{
	ipvsSvcAttrAF:       "address family",
	ipvsSvcAttrProtocol: "protocol",
	ipvsSvcAttrFWMark:   "firewall mark",
	ipvsSvcAttrFlags:    "flags",
	ipvsSvcAttrTimeout:  "timeout",
	ipvsSvcAttrNetmask:  "netmask",
}

// serviceAttrs are a service's attribute values by type, slices of the
// message (nil: absent).
type serviceAttrs [ipvsSvcAttrMax + 1][]byte

// decodeService decodes IPVS_CMD_ATTR_SERVICE's attributes. The family is
// looked at first: a service of a family pick cannot want is skipped as
// soon as its family attribute is read, the rest neither split nor
// decoded (the kernel puts the family first).
func decodeService(b []byte, pick families) (dumpedService, bool, error) {
	var attrs serviceAttrs
	for len(b) >= attrHeaderLen {
		kind, value, rest, err := nextAttr(b)
		if err != nil {
			return dumpedService{}, false, err
		}
		if kind == ipvsSvcAttrAF && len(value) >= 2 && !pick.mayHave(binary.NativeEndian.Uint16(value)) {
			return dumpedService{}, false, nil
		}
		if int(kind) < len(attrs) {
			attrs[kind] = value
		}
		b = rest
	}
	return attrs.service(pick)
}

// service is what fromMobyService makes of moby's decoding of the same
// attributes: services without an address (firewall-mark ones) and
// protocols we do not program are skipped; a missing option is zero. The
// address is read right after the family: an IPv6 service is skipped by
// the IPv4 read unless it is at an IPv4-mapped address.
func (a *serviceAttrs) service(pick families) (dumpedService, bool, error) {
	af, err := a.number(ipvsSvcAttrAF, 2)
	if err != nil || a[ipvsSvcAttrAddr] == nil {
		a.logSkipped(err)
		return dumpedService{}, false, err
	}
	addr, err := kernelAddress(uint16(af), a[ipvsSvcAttrAddr])
	if err != nil || !pick.has(addr.Unmap()) {
		return dumpedService{}, false, err
	}
	key, ok, err := a.key(addr.Unmap())
	if !ok {
		a.logSkipped(err)
		return dumpedService{}, false, err
	}
	svc, err := a.options(key)
	return dumpedService{Service: svc, family: uint16(af)}, err == nil, err
}

// key reads the protocol and the port; ok is false for a firewall-mark
// service and a protocol we do not program.
func (a *serviceAttrs) key(addr netip.Addr) (key ServiceKey, ok bool, err error) {
	fwmark, err := a.number(ipvsSvcAttrFWMark, 4)
	if err != nil || fwmark != 0 {
		return key, false, err
	}
	number, err := a.number(ipvsSvcAttrProtocol, 2)
	protocol, known := protocolName(uint16(number))
	if err != nil || !known {
		return key, false, err
	}
	port, err := a.port()
	return ServiceKey{Address: addr, Protocol: protocol, Port: port}, err == nil, err
}

// options reads the scheduler and the persistence options.
func (a *serviceAttrs) options(key ServiceKey) (Service, error) {
	flags, flagsErr := a.number(ipvsSvcAttrFlags, 4)
	timeout, timeoutErr := a.number(ipvsSvcAttrTimeout, 4)
	netmask, netmaskErr := a.number(ipvsSvcAttrNetmask, 4)
	if err := errors.Join(flagsErr, timeoutErr, netmaskErr); err != nil {
		return Service{}, err
	}
	return Service{
		ServiceKey: key,
		Scheduler:  schedulerName(a[ipvsSvcAttrSchedName]),
		Flags:      flags,
		Timeout:    timeout,
		Netmask:    netmask,
	}, nil
}

// logSkipped logs a service skipped as one we do not manage.
func (a *serviceAttrs) logSkipped(err error) {
	if err == nil && klog.V(4).Enabled() {
		fwmark, _ := a.number(ipvsSvcAttrFWMark, 4)
		protocol, _ := a.number(ipvsSvcAttrProtocol, 2)
		klog.V(4).InfoS("Skipping IPVS service we do not manage", "protocol", protocol, "fwmark", fwmark)
	}
}

// number reads a native-endian u16 or u32 attribute (its first size
// bytes: IPVS_SVC_ATTR_FLAGS's are the flags, its mask follows); absent,
// zero.
func (a *serviceAttrs) number(kind, size int) (uint32, error) {
	v := a[kind]
	switch {
	case v == nil:
		return 0, nil
	case len(v) < size:
		return 0, fmt.Errorf("%s attribute of %d bytes, want %d: %w", serviceAttrNames[kind], len(v), size, syscall.EBADMSG)
	case size == 2:
		return uint32(binary.NativeEndian.Uint16(v)), nil
	}
	return binary.NativeEndian.Uint32(v), nil
}

// port reads IPVS_SVC_ATTR_PORT, in network order.
func (a *serviceAttrs) port() (uint16, error) {
	v := a[ipvsSvcAttrPort]
	if v == nil {
		return 0, nil
	}
	if len(v) < 2 {
		return 0, fmt.Errorf("port attribute of %d bytes: %w", len(v), syscall.EBADMSG)
	}
	return binary.BigEndian.Uint16(v), nil
}

// kernelAddress reads IPVS_SVC_ATTR_ADDR as the kernel holds it: IPv4 in
// the first 4 bytes for AF_INET; an IPv4-mapped IPv6 address stays mapped.
func kernelAddress(af uint16, v []byte) (netip.Addr, error) {
	switch {
	case af == unix.AF_INET && len(v) >= 4:
		return netip.AddrFrom4([4]byte(v[:4])), nil
	case af == unix.AF_INET6 && len(v) >= 16:
		return netip.AddrFrom16([16]byte(v[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes for address family %d: %w", len(v), af, syscall.EBADMSG)
}

// kernelSchedulers are the schedulers of Linux's IPVS.
var kernelSchedulers = [...]string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// schedulerName is the NUL-terminated name, without allocating for the
// kernel's schedulers (comparing string(v) does not allocate).
func schedulerName(v []byte) string {
	if i := slices.Index(v, 0); i >= 0 {
		v = v[:i]
	}
	for _, name := range kernelSchedulers {
		if string(v) == name {
			return name
		}
	}
	return string(v)
}
