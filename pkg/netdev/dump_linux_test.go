package netdev

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The dumps are decoded in place, without netlink's library: these cases
// feed the decoder the kernel's message layout by hand, since the kernel
// itself is reached only in the VM (netlink_integration_test.go).

// message is one netlink message of sequence number seq.
func message(kind, flags uint16, seq uint32, payload []byte) []byte {
	m := make([]byte, nlmsgAlign(headerLen+len(payload)))
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
		a := make([]byte, rtaAlign(attrHeaderLen+len(value)))
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
		if kind == unix.RTM_NEWADDR && binary.NativeEndian.Uint32(payload[4:8]) != 9 {
			addrs = append(addrs, ownAddress(payload[addrMessageLen:]))
		}
		return nil
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

// An attribute that runs past the message ends what is read of it.
func TestOwnAddressStopsAtACutAttribute(t *testing.T) {
	attrs := addressMessage(2, addrAttr{unix.IFA_ADDRESS, "192.168.0.10"})[addrMessageLen:]
	if got := ownAddress(attrs[:len(attrs)-1]); got.IsValid() {
		t.Errorf("a cut attribute gave %v, want none", got)
	}
	if got := ownAddress(attrs); got != netip.MustParseAddr("192.168.0.10") {
		t.Errorf("ownAddress = %v, want 192.168.0.10", got)
	}
}
