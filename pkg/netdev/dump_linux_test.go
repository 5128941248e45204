package netdev

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// The dumps are decoded in place, without netlink's library: these cases
// feed the decoder the kernel's message layout by hand, since the kernel
// itself is reached only in the VM (netlink_integration_test.go).

// message is one netlink message of sequence number seq.
func message(kind, flags uint16, seq uint32, payload []byte) []byte {
	m := make([]byte, netlinkbatch.Align(headerLen+len(payload)))
	binary.NativeEndian.PutUint32(m[0:4], uint32(headerLen+len(payload)))
	binary.NativeEndian.PutUint16(m[4:6], kind)
	binary.NativeEndian.PutUint16(m[6:8], flags)
	binary.NativeEndian.PutUint32(m[8:12], seq)
	copy(m[headerLen:], payload)
	return m
}

// addrAttr is an address attribute: IFA_ADDRESS or IFA_LOCAL.
type addrAttr struct {
	kind uint16
	addr string
}

// addressMessage is an RTM_NEWADDR payload of device index.
func addressMessage(index uint32, attrs ...addrAttr) []byte {
	p := make([]byte, addrMessageLen)
	binary.NativeEndian.PutUint32(p[4:8], index)
	for _, attr := range attrs {
		value := netip.MustParseAddr(attr.addr).AsSlice()
		a := make([]byte, netlinkbatch.Align(attrHeaderLen+len(value)))
		binary.NativeEndian.PutUint16(a[0:2], uint16(attrHeaderLen+len(value)))
		binary.NativeEndian.PutUint16(a[2:4], attr.kind)
		copy(a[attrHeaderLen:], value)
		p = append(p, a...)
	}
	return p
}

func errnoPayload(errno syscall.Errno) []byte {
	p := make([]byte, 4)
	binary.NativeEndian.PutUint32(p, uint32(-int32(errno)))
	return p
}

// readDump decodes batches as dump would, keeping the addresses of devices
// other than 9.
func readDump(seq uint32, batches ...[]byte) ([]netip.Addr, *dumpReader, error) {
	var addrs []netip.Addr
	d := &dumpReader{seq: seq, take: func(kind uint16, payload []byte) error {
		if kind != unix.RTM_NEWADDR || binary.NativeEndian.Uint32(payload[4:8]) == 9 {
			return nil
		}
		addr, err := ownAddress(payload[addrMessageLen:])
		addrs = append(addrs, addr)
		return err
	}}
	for _, b := range batches {
		if err := d.parse(b); err != nil {
			return addrs, d, err
		}
	}
	return addrs, d, nil
}

func TestDumpReaderTakesAddressesAcrossBatchesUntilDone(t *testing.T) {
	first := slices.Concat(
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 7, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"})),
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 7, addressMessage(9, addrAttr{unix.IFA_ADDRESS, "10.96.0.1"})),
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 6, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "10.0.0.6"})), // another request's
	)
	second := slices.Concat(
		// A point-to-point address: IFA_ADDRESS is the peer, IFA_LOCAL our side.
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 7, addressMessage(3, addrAttr{unix.IFA_ADDRESS, "10.1.0.2"}, addrAttr{unix.IFA_LOCAL, "10.1.0.1"})),
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 7, addressMessage(3, addrAttr{unix.IFA_ADDRESS, "fd00::10"})),
		message(unix.NLMSG_DONE, unix.NLM_F_MULTI, 7, errnoPayload(0)),
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 7, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "10.0.0.7"})), // after the end
	)
	got, d, err := readDump(7, first, second)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.168.0.10"), netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::10")}
	if !slices.Equal(got, want) || !d.done || d.interrupted {
		t.Errorf("got %v, done %v, interrupted %v; want %v, done, not interrupted", got, d.done, d.interrupted, want)
	}
}

func TestDumpReaderReportsInterruptedDump(t *testing.T) {
	_, d, err := readDump(1, slices.Concat(
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"})),
		message(unix.NLMSG_DONE, unix.NLM_F_MULTI, 1, errnoPayload(0)),
	))
	if err != nil || !d.interrupted {
		t.Errorf("interrupted %v, err %v: want an interrupted dump", d.interrupted, err)
	}
}

func TestDumpReaderReturnsTheKernelsErrno(t *testing.T) {
	for _, kind := range []uint16{unix.NLMSG_DONE, unix.NLMSG_ERROR} {
		_, d, err := readDump(1, message(kind, 0, 1, errnoPayload(unix.ENODEV)))
		if !errors.Is(err, unix.ENODEV) || !d.done {
			t.Errorf("message type %d with ENODEV: %v, done %v; want ENODEV, done", kind, err, d.done)
		}
	}
}

func TestDumpReaderRejectsACutMessage(t *testing.T) {
	m := message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"}))
	if _, _, err := readDump(1, m[:len(m)-4]); !errors.Is(err, syscall.EBADMSG) {
		t.Errorf("a message cut short: %v, want EBADMSG", err)
	}
}

// An attribute that runs past the message is EBADMSG.
func TestOwnAddressRejectsACutAttribute(t *testing.T) {
	attrs := addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"})[addrMessageLen:]
	if got, err := ownAddress(attrs[:len(attrs)-1]); !errors.Is(err, syscall.EBADMSG) {
		t.Errorf("a cut attribute gave %v (%v), want EBADMSG", got, err)
	}
	if got, err := ownAddress(attrs); err != nil || got != netip.MustParseAddr("192.168.0.10") {
		t.Errorf("ownAddress = %v (%v), want 192.168.0.10", got, err)
	}
}

// A batch larger than the read buffer: read(2) would hand over its first
// 64 KiB and drop the rest silently, and when the cut falls between two
// messages nothing in the bytes read shows it. Every address must be read
// (a socket pair stands in for the kernel's end).
func TestReceiveReadsABatchLargerThanTheBuffer(t *testing.T) {
	first := message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"}))
	batch := slices.Concat(slices.Repeat(first, netlinkbatch.BufferSize/len(first)),
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.11"})))
	got, err := receiveBatches(t, batch, message(unix.NLMSG_DONE, unix.NLM_F_MULTI, 1, errnoPayload(0)))
	if err != nil || len(got) != netlinkbatch.BufferSize/len(first)+1 || got[len(got)-1] != netip.MustParseAddr("192.168.0.11") {
		t.Errorf("read %d addresses (%v), want %d ending with 192.168.0.11", len(got), err, netlinkbatch.BufferSize/len(first)+1)
	}
}

// A point-to-point address whose IFA_LOCAL attribute runs past its
// message: its IFA_ADDRESS, read first, is the peer's, not the node's; the
// dump is malformed and must be an error, as netlink's ParseRouteAttr made
// it before, not the peer given as a local address.
func TestDumpReaderRejectsACutLocalAddress(t *testing.T) {
	payload := addressMessage(3, addrAttr{unix.IFA_ADDRESS, "10.1.0.2"}, addrAttr{unix.IFA_LOCAL, "10.1.0.1"})
	got, _, err := readDump(1, slices.Concat(
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 1, payload[:len(payload)-2]),
		message(unix.NLMSG_DONE, unix.NLM_F_MULTI, 1, errnoPayload(0)),
	))
	if !errors.Is(err, syscall.EBADMSG) || slices.Contains(got, netip.MustParseAddr("10.1.0.2")) {
		t.Errorf("a cut IFA_LOCAL gave %v (%v), want EBADMSG and not the peer 10.1.0.2", got, err)
	}
}

// A name longer than a device's can be names no device, so none of its
// addresses is left out, as the Fake (and netlink.LinkList before) has
// it; SIOCGIFINDEX cannot even be asked.
func TestIndexesOfPassesOverANameNoDeviceCanHave(t *testing.T) {
	got, err := indexesOf([]string{"kube-ipvs0-is-too-long"})
	if err != nil || len(got) != 0 {
		t.Errorf("indexesOf(a 22-byte name) = %v, %v; want none, no error", got, err)
	}
}

// A length shorter than the header (zero included) is EBADMSG, not a
// message the reader would step over forever.
func TestDumpReaderRejectsALengthShorterThanTheHeader(t *testing.T) {
	for _, size := range []uint32{0, headerLen - 1} {
		m := message(unix.RTM_NEWADDR, unix.NLM_F_MULTI, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"}))
		binary.NativeEndian.PutUint32(m[0:4], size)
		if _, _, err := readDump(1, m); !errors.Is(err, syscall.EBADMSG) {
			t.Errorf("a message of length %d: %v, want EBADMSG", size, err)
		}
	}
}

// receiveBatches hands batches, answering a request of sequence number 1,
// to routeSocket.receive through a socket pair standing in for the
// kernel's end, and gives the addresses taken.
func receiveBatches(t *testing.T, batches ...[]byte) ([]netip.Addr, error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, b := range batches {
		if _, err := unix.Write(fds[1], b); err != nil {
			t.Fatal(err)
		}
	}
	a := addressTaker{keep: func(uint32) bool { return true }}
	s := &routeSocket{fd: fds[0], seq: 1}
	err = s.receive(&dumpReader{seq: 1, take: a.take})
	return a.addrs, err
}

// A dump the kernel marked interrupted is netlink.ErrDumpInterrupted once
// read to its end, which LocalAddresses retries.
func TestReceiveReportsAnInterruptedDump(t *testing.T) {
	_, err := receiveBatches(t,
		message(unix.RTM_NEWADDR, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 1, addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"})),
		message(unix.NLMSG_DONE, unix.NLM_F_MULTI, 1, errnoPayload(0)))
	if !errors.Is(err, netlink.ErrDumpInterrupted) {
		t.Errorf("an interrupted dump: %v, want ErrDumpInterrupted", err)
	}
}
