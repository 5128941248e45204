package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"
	_ "unsafe" // go:linkname

	mobyipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// mobyParseService is moby's decoding of one message of its GetServices
// dump, the path ours replaces: the tests compare the two on the same
// bytes.
//
//go:linkname mobyParseService github.com/moby/ipvs.(*Handle).parseService
func mobyParseService(h *mobyipvs.Handle, msg []byte) (*mobyipvs.Service, error)

const (
	testFamily = 0x24 // the IPVS family's id in the messages built here
	testSeq    = 7
)

// nlAttr is one attribute, padded to 4 bytes.
func nlAttr(kind uint16, values ...[]byte) []byte {
	value := slices.Concat(values...)
	b := binary.NativeEndian.AppendUint16(nil, uint16(attrHeaderLen+len(value)))
	b = binary.NativeEndian.AppendUint16(b, kind)
	b = append(b, value...)
	return append(b, make([]byte, netlinkbatch.Align(len(b))-len(b))...)
}

func u16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// kernelService are the attributes ip_vs_genl_fill_service writes, in its
// order: the family, the firewall mark or protocol, address and port, the
// scheduler, the persistence engine when set, flags and mask, timeout,
// netmask, the 32-bit and 64-bit stats.
type kernelService struct {
	af       uint16
	fwmark   uint32
	protocol uint16
	addr     string
	port     uint16
	sched    string
	pe       string
	flags    uint32
	timeout  uint32
	netmask  uint32
}

func (s kernelService) attrs() []byte {
	b := nlAttr(ipvsSvcAttrAF, u16(s.af))
	if s.fwmark != 0 {
		b = append(b, nlAttr(ipvsSvcAttrFWMark, u32(s.fwmark))...)
	} else {
		a := netip.MustParseAddr(s.addr).As16()
		if s.af == unix.AF_INET {
			var v4 [16]byte // the first 4 bytes of union nf_inet_addr
			copy(v4[:], a[12:])
			a = v4
		}
		port := binary.BigEndian.AppendUint16(nil, s.port)
		b = slices.Concat(b, nlAttr(ipvsSvcAttrProtocol, u16(s.protocol)), nlAttr(ipvsSvcAttrAddr, a[:]), nlAttr(ipvsSvcAttrPort, port))
	}
	b = append(b, nlAttr(ipvsSvcAttrSchedName, []byte(s.sched+"\x00"))...)
	if s.pe != "" {
		b = append(b, nlAttr(ipvsSvcAttrPEName, []byte(s.pe+"\x00"))...)
	}
	stats := slices.Concat(nlAttr(1, u32(3)), nlAttr(4, u64(1200)), nlAttr(10, u32(9)))
	return slices.Concat(b,
		nlAttr(ipvsSvcAttrFlags, u32(s.flags), u32(0xffffffff)),
		nlAttr(ipvsSvcAttrTimeout, u32(s.timeout)),
		nlAttr(ipvsSvcAttrNetmask, u32(s.netmask)),
		nlAttr(10|unix.NLA_F_NESTED, stats),
		nlAttr(12|unix.NLA_F_NESTED, stats))
}

// payload is the message after its nlmsghdr: genlmsghdr, then the nested
// service.
func (s kernelService) payload() []byte {
	return append([]byte{ipvsCmdNewService, ipvsGenlVersion, 0, 0}, nlAttr(ipvsCmdAttrService, s.attrs())...)
}

const ipvsCmdNewService = 1

// nlMessage is one netlink message of type kind.
func nlMessage(kind, flags uint16, seq uint32, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, kind)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 1234) // port id
	b = append(b, payload...)
	return append(b, make([]byte, netlinkbatch.Align(len(b))-len(b))...)
}

// negErrno is an error code as netlink sends it.
func negErrno(errno syscall.Errno) []byte {
	return binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
}

func doneMessage(seq uint32) []byte {
	return nlMessage(unix.NLMSG_DONE, unix.NLM_F_MULTI, seq, u32(0))
}

// dumpOf is the dump's answer to testSeq: each service a message, then
// NLMSG_DONE.
func dumpOf(services ...kernelService) []byte {
	var b []byte
	for _, s := range services {
		b = append(b, nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, s.payload())...)
	}
	return append(b, doneMessage(testSeq)...)
}

// readDump reads batches as the socket would hand them.
func readDump(pick families, batches ...[]byte) (dumped, error) {
	return readDumpSized(pick, 0, batches...)
}

// readDumpSized is readDump with room for size virtual servers, as the
// socket makes after a first dump.
func readDumpSized(pick families, size int, batches ...[]byte) (dumped, error) {
	r := newServiceReader(testFamily, testSeq, pick, size)
	for _, b := range batches {
		if err := r.parse(b); err != nil {
			return dumped{}, err
		}
		if r.done {
			break
		}
	}
	if !r.done {
		return dumped{}, errors.New("dump not done")
	}
	if r.interrupted {
		return dumped{}, errors.New("interrupted")
	}
	return r.services, nil
}

// dumpedOf is what the dump gives for services.
func dumpedOf(services ...dumpedService) dumped {
	d := dumped{vss: []VirtualServer{}}
	for _, s := range services {
		d.add(s)
	}
	return d
}

// mobyDump is what list made of moby's GetServices on the same messages.
func mobyDump(t testing.TB, pick families, services ...kernelService) dumped {
	out := dumped{vss: []VirtualServer{}}
	for _, s := range services {
		ms, err := mobyParseService(nil, s.payload())
		if err != nil {
			t.Fatalf("moby's parse of %+v: %v", s, err)
		}
		if svc, ok := fromMobyService(ms); ok && pick.has(svc.Address) {
			out.add(dumpedService{Service: svc, family: ms.AddressFamily})
		}
	}
	return out
}

func tcp(af uint16, addr string, port uint16) kernelService {
	netmask := uint32(0xffffffff)
	if af == unix.AF_INET6 {
		netmask = 128
	}
	return kernelService{af: af, protocol: unix.IPPROTO_TCP, addr: addr, port: port, sched: "rr", flags: FlagHashed, netmask: netmask}
}

// variedServices are the shapes a node's table may hold: both families,
// every protocol we program, persistence, a persistence engine, schedulers,
// a firewall-mark service, a protocol we do not program, an IPv6 one at an
// IPv4-mapped address beside the IPv4 one at that address.
func variedServices() []kernelService {
	udp := tcp(unix.AF_INET, "10.96.0.10", 53)
	udp.protocol, udp.flags = unix.IPPROTO_UDP, FlagHashed|0x4
	sctp := tcp(unix.AF_INET6, "fd00::96:3", 3868)
	sctp.protocol, sctp.sched = unix.IPPROTO_SCTP, "mh"
	persistent := tcp(unix.AF_INET, "192.168.10.1", 30000)
	persistent.flags, persistent.timeout, persistent.netmask, persistent.sched = FlagHashed|FlagPersistent, 10800, 0xffffff00, "sh"
	persistent6 := tcp(unix.AF_INET6, "fd00::96:5", 443)
	persistent6.flags, persistent6.timeout, persistent6.netmask, persistent6.pe = FlagHashed|FlagPersistent, 30, 64, "sip"
	fwmark := kernelService{af: unix.AF_INET, fwmark: 7, sched: "rr", flags: FlagHashed, netmask: 0xffffffff}
	ah := tcp(unix.AF_INET, "10.96.0.3", 0)
	ah.protocol = unix.IPPROTO_AH
	odd := tcp(unix.AF_INET, "10.96.0.4", 80)
	odd.sched = "custom-scheduler"
	return []kernelService{
		tcp(unix.AF_INET, "10.96.0.1", 80), udp, sctp, persistent, persistent6, fwmark, ah, odd,
		tcp(unix.AF_INET6, "fd00::96:1", 443), tcp(unix.AF_INET6, "::ffff:10.96.0.1", 80),
	}
}

// The dump decodes to what moby's parse and fromMobyService made of the
// same messages, for each family picked.
func TestServiceDumpMatchesMoby(t *testing.T) {
	services := variedServices()
	for name, pick := range map[string]families{"both": bothFamilies, "IPv4": onlyIPv4, "IPv6": onlyIPv6} {
		t.Run(name, func(t *testing.T) {
			got, err := readDump(pick, dumpOf(services...))
			if err != nil {
				t.Fatal(err)
			}
			if want := mobyDump(t, pick, services...); !reflect.DeepEqual(got, want) {
				t.Errorf("dump =\n%+v\nwant (moby)\n%+v", got, want)
			}
		})
	}
}

func TestServiceDumpShapes(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("fd00::96:1")
	persistent := tcp(unix.AF_INET, "10.96.0.1", 80)
	persistent.flags, persistent.timeout, persistent.netmask = FlagHashed|FlagPersistent, 10800, 0xffffff00
	for _, c := range []struct {
		name string
		in   kernelService
		want []dumpedService
	}{
		{"IPv4", tcp(unix.AF_INET, "10.96.0.1", 80), []dumpedService{{rrKernel(v4, TCP, 80, 0xffffffff), unix.AF_INET}}},
		{"IPv6", tcp(unix.AF_INET6, "fd00::96:1", 443), []dumpedService{{rrKernel(v6, TCP, 443, 128), unix.AF_INET6}}},
		{"IPv4-mapped", tcp(unix.AF_INET6, "::ffff:10.96.0.1", 80), []dumpedService{{rrKernel(v4, TCP, 80, 128), unix.AF_INET6}}},
		{"firewall mark", kernelService{af: unix.AF_INET, fwmark: 7, sched: "rr"}, nil},
		{"protocol AH", kernelService{af: unix.AF_INET, protocol: unix.IPPROTO_AH, addr: "10.96.0.1", sched: "rr"}, nil},
		{"persistence", persistent, []dumpedService{{Service{ServiceKey: svcKey(v4, TCP, 80), Scheduler: "rr", Flags: FlagHashed | FlagPersistent, Timeout: 10800, Netmask: 0xffffff00}, unix.AF_INET}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readDump(bothFamilies, dumpOf(c.in))
			if want := dumpedOf(c.want...); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("dump = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func rrKernel(addr netip.Addr, p Protocol, port uint16, netmask uint32) Service {
	return Service{ServiceKey: svcKey(addr, p, port), Scheduler: "rr", Flags: FlagHashed, Netmask: netmask}
}

// The IPv4 read keeps an IPv6 virtual server at an IPv4-mapped address
// (it reads back as IPv4) and the IPv6 read does not; the IPv6 read skips
// IPv4 ones on their family attribute, whatever follows it.
func TestServiceDumpFamilies(t *testing.T) {
	mapped := tcp(unix.AF_INET6, "::ffff:10.96.0.1", 80)
	v6 := tcp(unix.AF_INET6, "fd00::1", 80)
	dump := dumpOf(tcp(unix.AF_INET, "10.96.0.1", 80), mapped, v6)
	v4s, err := readDump(onlyIPv4, dump)
	if err != nil || len(v4s.vss) != 2 || !v4s.mapped[1] || !v4s.vss[1].Address.Is4() {
		t.Errorf("IPv4 read = %+v, %v; want the IPv4 one and the mapped one", v4s, err)
	}
	v6s, err := readDump(onlyIPv6, dump)
	if err != nil || len(v6s.vss) != 1 || v6s.vss[0].Address != netip.MustParseAddr("fd00::1") {
		t.Errorf("IPv6 read = %+v, %v; want fd00::1 alone", v6s, err)
	}
	// An IPv4 service whose attributes after the family are garbage.
	garbage := slices.Concat([]byte{ipvsCmdNewService, ipvsGenlVersion, 0, 0}, nlAttr(ipvsCmdAttrService, nlAttr(ipvsSvcAttrAF, u16(unix.AF_INET)), nlAttr(ipvsSvcAttrAddr, []byte{1})))
	got, err := readDump(onlyIPv6, nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, garbage), doneMessage(testSeq))
	if err != nil || len(got.vss) != 0 {
		t.Errorf("IPv6 read of an IPv4 service = %+v, %v; want it skipped on its family", got, err)
	}
	if _, err := readDump(onlyIPv4, nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, garbage), doneMessage(testSeq)); !errors.Is(err, syscall.EBADMSG) {
		t.Errorf("IPv4 read of a 1-byte address: %v, want EBADMSG", err)
	}
}

// The kernel hands a dump over in batches of whole messages; messages of
// another request (left by one that failed midway) are stepped over.
func TestServiceDumpOverSeveralBatches(t *testing.T) {
	services := variedServices()
	var batches [][]byte
	batches = append(batches, nlMessage(testFamily, unix.NLM_F_MULTI, testSeq-1, services[0].payload()), doneMessage(testSeq-1))
	for i := 0; i < len(services); i += 3 {
		var batch []byte
		for _, s := range services[i:min(i+3, len(services))] {
			batch = append(batch, nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, s.payload())...)
		}
		batches = append(batches, batch)
	}
	batches = append(batches, doneMessage(testSeq))
	got, err := readDump(bothFamilies, batches...)
	if err != nil {
		t.Fatal(err)
	}
	if want := mobyDump(t, bothFamilies, services...); !reflect.DeepEqual(got, want) {
		t.Errorf("dump =\n%+v\nwant\n%+v", got, want)
	}
}

func TestServiceDumpErrors(t *testing.T) {
	ok := tcp(unix.AF_INET, "10.96.0.1", 80).payload()
	errMsg := func(errno syscall.Errno) []byte {
		return nlMessage(unix.NLMSG_ERROR, 0, testSeq, slices.Concat(negErrno(errno), make([]byte, unix.NLMSG_HDRLEN)))
	}
	withService := func(attrs ...[]byte) []byte {
		p := []byte{ipvsCmdNewService, ipvsGenlVersion, 0, 0}
		return nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, append(p, nlAttr(ipvsCmdAttrService, attrs...)...))
	}
	good := tcp(unix.AF_INET, "10.96.0.1", 80).attrs()
	truncated := nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, ok)
	binary.NativeEndian.PutUint16(truncated[unix.NLMSG_HDRLEN+genlHeaderLen:], 400) // the service attribute's size
	for _, c := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"NLMSG_ERROR", errMsg(syscall.ENOENT), syscall.ENOENT},
		{"error at the end", slices.Concat(nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, ok), nlMessage(unix.NLMSG_DONE, unix.NLM_F_MULTI, testSeq, negErrno(syscall.EBUSY))), syscall.EBUSY},
		{"message past the batch", nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, ok)[:30], syscall.EBADMSG},
		{"attribute past the message", truncated, syscall.EBADMSG},
		{"no genetlink header", nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, []byte{1, 2}), syscall.EBADMSG},
		{"no service attribute", nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, []byte{ipvsCmdNewService, 1, 0, 0}), syscall.EBADMSG},
		{"nested attribute past the service", withService(good[:len(good)-6]), syscall.EBADMSG},
		{"short port", withService(good, nlAttr(ipvsSvcAttrPort, []byte{1})), syscall.EBADMSG},
		{"short flags", withService(good, nlAttr(ipvsSvcAttrFlags, []byte{1, 2})), syscall.EBADMSG},
		{"short IPv6 address", withService(nlAttr(ipvsSvcAttrAF, u16(unix.AF_INET6)), nlAttr(ipvsSvcAttrProtocol, u16(6)), nlAttr(ipvsSvcAttrAddr, make([]byte, 8))), syscall.EBADMSG},
		{"unknown family", withService(nlAttr(ipvsSvcAttrAF, u16(99)), nlAttr(ipvsSvcAttrProtocol, u16(6)), nlAttr(ipvsSvcAttrAddr, make([]byte, 16))), syscall.EBADMSG},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readDump(bothFamilies, c.batch, doneMessage(testSeq))
			if !errors.Is(err, c.want) {
				t.Errorf("dump = %+v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestServiceDumpInterrupted(t *testing.T) {
	msg := nlMessage(testFamily, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, testSeq, tcp(unix.AF_INET, "10.96.0.1", 80).payload())
	r := newServiceReader(testFamily, testSeq, bothFamilies, 0)
	if err := r.parse(slices.Concat(msg, doneMessage(testSeq))); err != nil || !r.done || !r.interrupted {
		t.Errorf("parse: %v, done %v, interrupted %v; want done and interrupted", err, r.done, r.interrupted)
	}
}

func TestServiceDumpRequest(t *testing.T) {
	req := serviceDumpRequest(testFamily, 9)
	want := slices.Concat(nlMessage(testFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 9, []byte{ipvsCmdGetService, ipvsGenlVersion, 0, 0}))
	binary.NativeEndian.PutUint32(want[12:16], 0) // the kernel fills in the port id
	if !slices.Equal(req, want) {
		t.Errorf("request % x, want % x", req, want)
	}
}

// FuzzDecodeServiceMessage: no message or batch panics, and one that both decode
// (moby's parse reads values of the sizes it expects, past a short
// attribute; ours refuses those) decodes to what moby made of it, when
// its first attribute is the service and none is flagged nested (go test -fuzz FuzzDecodeServiceMessage
// ./pkg/ipvs/).
func FuzzDecodeServiceMessage(f *testing.F) {
	for _, s := range variedServices() {
		f.Add(s.payload())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		_ = newServiceReader(testFamily, testSeq, bothFamilies, 0).parse(payload) // as a batch
		got, ok, err := decodeServiceMessage(payload, bothFamilies)
		ms, mobyErr := mobyParse(payload)
		if err != nil || mobyErr != nil || !unflagged(payload) {
			return
		}
		svc, mobyOK := fromMobyService(ms)
		if ok != mobyOK || (ok && (got.Service != svc || got.family != ms.AddressFamily)) {
			t.Fatalf("decoded %+v, %v, %v; moby: %+v, %v", got, ok, err, svc, mobyOK)
		}
	})
}

// mobyParse is mobyParseService, a panic an error (moby reads values of
// the sizes it expects without checking).
func mobyParse(payload []byte) (ms *mobyipvs.Service, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if len(payload) < genlHeaderLen {
		return nil, errors.New("short")
	}
	return mobyParseService(nil, payload)
}

// unflagged tells whether the message's first attribute is the service
// and it and the service's attributes have no flag bits (which moby does
// not mask off).
func unflagged(payload []byte) bool {
	b := payload[genlHeaderLen:]
	if len(b) < attrHeaderLen || binary.NativeEndian.Uint16(b[2:4]) != ipvsCmdAttrService {
		return false
	}
	_, nested, _, err := nextAttr(b)
	for err == nil && len(nested) >= attrHeaderLen {
		if binary.NativeEndian.Uint16(nested[2:4])&^nlaTypeMask != 0 {
			return false
		}
		_, _, nested, err = nextAttr(nested)
	}
	return err == nil
}

// serviceDump5k is a dump of 5,000 IPv4 virtual servers (a tenth
// persistent), what a full sync reads at 5k Services, in 32 KiB batches
// as the kernel hands them.
func serviceDump5k() [][]byte {
	var batches [][]byte
	var batch []byte
	for i := range 5000 {
		s := tcp(unix.AF_INET, netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}).String(), 80)
		if i%10 == 0 {
			s.flags, s.timeout = FlagHashed|FlagPersistent, 10800
		}
		msg := nlMessage(testFamily, unix.NLM_F_MULTI, testSeq, s.payload())
		if len(batch)+len(msg) > 32<<10 {
			batches, batch = append(batches, batch), nil
		}
		batch = append(batch, msg...)
	}
	return append(batches, append(batch, doneMessage(testSeq)...))
}

// BenchmarkServiceDump decodes a 5k-service dump as list does: ours (with
// room for what the last dump gave), and
// moby's (each batch copied and split into messages as its socket's Receive
// does, each message parsed into an *ipvs.Service, then fromMobyService),
// for the IPv4 read and the IPv6 read of an IPv4-only table.
func BenchmarkServiceDump(b *testing.B) {
	batches := serviceDump5k()
	size := 0
	for _, batch := range batches {
		size += len(batch)
	}
	for _, c := range []struct {
		name string
		pick families
		last int // what the last dump gave
	}{{"IPv4", onlyIPv4, 5000}, {"IPv6", onlyIPv6, 0}} {
		pick := c.pick
		b.Run("ours/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := readDumpSized(pick, c.last, batches...); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("moby/"+c.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mobyDecode(pick, batches); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// mobyDecode is the decoding half of list's moby path.
func mobyDecode(pick families, batches [][]byte) (dumped, error) {
	var services []*mobyipvs.Service
	for _, batch := range batches {
		msgs, err := syscall.ParseNetlinkMessage(slices.Clone(batch))
		if err != nil {
			return dumped{}, err
		}
		for _, m := range msgs {
			if m.Header.Type != testFamily {
				continue
			}
			ms, err := mobyParseService(nil, m.Data)
			if err != nil {
				return dumped{}, err
			}
			services = append(services, ms)
		}
	}
	out := dumped{vss: make([]VirtualServer, 0, len(services))}
	for _, ms := range services {
		if svc, ok := fromMobyService(ms); ok && pick.has(svc.Address) {
			out.add(dumpedService{Service: svc, family: ms.AddressFamily})
		}
	}
	return out, nil
}

// The benchmark's dump decodes the same both ways.
func TestServiceDump5kMatchesMoby(t *testing.T) {
	batches := serviceDump5k()
	got, err := readDump(onlyIPv4, batches...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mobyDecode(onlyIPv4, batches)
	if err != nil || len(got.vss) != 5000 || !reflect.DeepEqual(got, want) {
		t.Errorf("%d services, moby %d (%v); equal %v", len(got.vss), len(want.vss), err, reflect.DeepEqual(got, want))
	}
}

// A kernel scheduler's name is read without allocating; another name is
// read as it is. Both stop at the NUL.
func TestSchedulerName(t *testing.T) {
	for _, name := range kernelSchedulers {
		v := append([]byte(name), 0, 'x')
		if got := schedulerName(v); got != name {
			t.Errorf("schedulerName(%q) = %q", v, got)
		}
		if n := testing.AllocsPerRun(10, func() { schedulerName(v) }); n != 0 {
			t.Errorf("schedulerName(%q): %v allocations, want 0", v, n)
		}
	}
	if got := schedulerName([]byte("mine\x00")); got != "mine" {
		t.Errorf(`schedulerName("mine\x00") = %q`, got)
	}
}
