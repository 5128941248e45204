package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// localAddresses reads the node's addresses for LocalAddresses. The
// kernel table holds one, so that what it keeps lasts as long as the
// table: every partial sync reads the node's addresses.
type localAddresses struct {
	// mu lets one caller at a time read into buf and learn skippedLast.
	mu sync.Mutex
	// buf receives the dumps: netlink's library allocates a fresh 64 KiB
	// buffer for each batch and a message slice for its contents (2.1 MiB
	// a sync at 10k Services, when kube-ipvs0's addresses were in the
	// dump). A sync.Pool would not do: the collections between two syncs
	// empty it.
	buf []byte
	// skippedLast is how many addresses the skipped devices held at the
	// last dump of every address: kube-ipvs0's, one per Service IP. Once
	// it makes the reads go device by device it stays: learning how many
	// they hold now would take the dump it avoids, and a dump per device
	// costs what the node's devices do, not the Services.
	skippedLast int
}

// Sizes of the fixed parts of the messages read and written here.
const (
	headerLen      = unix.SizeofNlMsghdr  // nlmsghdr
	linkMessageLen = unix.SizeofIfInfomsg // ifinfomsg
	addrMessageLen = unix.SizeofIfAddrmsg // ifaddrmsg
	attrHeaderLen  = unix.SizeofRtAttr    // rtattr
)

// routeSocket is a netlink socket to the kernel's link and address tables
// that asks for strict checking of dump requests, so that the kernel
// honours their filters (Linux 4.20 on).
type routeSocket struct {
	fd  int
	seq uint32
	// strict: the kernel took the request for strict checking.
	strict bool
	// buf receives the answers (made on the first read when nil), grown
	// for a batch that would not fit.
	buf []byte
}

func openRouteSocket(buf []byte) (*routeSocket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open a netlink socket: %w", err)
	}
	s := &routeSocket{fd: fd, buf: buf}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 60}); err != nil {
		s.close()
		return nil, fmt.Errorf("set the netlink socket's receive timeout: %w", err)
	}
	s.strict = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1) == nil
	return s, nil
}

func (s *routeSocket) close() { unix.Close(s.fd) }

// dump sends a dump request (its header's sequence number is set here) and
// hands take each message of the answer. A dump the kernel interrupted
// (the table changed while it was read) is netlink.ErrDumpInterrupted; an
// error the kernel answered with is that errno.
func (s *routeSocket) dump(req []byte, take func(kind uint16, payload []byte) error) error {
	s.seq++
	binary.NativeEndian.PutUint32(req[8:12], s.seq)
	if err := unix.Sendto(s.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send the dump request: %w", err)
	}
	return s.receive(&dumpReader{seq: s.seq, take: take})
}

// receive reads the answer to the last request into d.
func (s *routeSocket) receive(d *dumpReader) error {
	for !d.done {
		batch, err := netlinkbatch.Next(s.fd, &s.buf)
		if err != nil {
			return fmt.Errorf("read the dump: %w", err)
		}
		if err := d.parse(batch); err != nil {
			return err
		}
	}
	if d.interrupted {
		return netlink.ErrDumpInterrupted
	}
	return nil
}

// dumpReader is a dump being read.
type dumpReader struct {
	seq         uint32
	take        func(kind uint16, payload []byte) error
	done        bool
	interrupted bool
}

// parse takes in one batch of messages, decoded in place.
func (d *dumpReader) parse(b []byte) error {
	done, interrupted, err := netlinkbatch.Walk(b, d.seq, func(kind, _ uint16, payload []byte) (bool, error) {
		return false, d.take(kind, payload)
	})
	d.done, d.interrupted = d.done || done, d.interrupted || interrupted
	return err
}

// dumpRequest is a dump request of the given type whose body, all zero
// but for index at index's offset, is size bytes long.
func dumpRequest(kind uint16, size, indexOffset int, index uint32) []byte {
	req := make([]byte, headerLen+size)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], kind)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[headerLen+indexOffset:], index)
	return req
}

// linkIndexes are the indexes of every device but the skipped ones.
func (s *routeSocket) linkIndexes(skipped map[uint32]bool) ([]uint32, error) {
	var out []uint32
	err := s.dump(dumpRequest(unix.RTM_GETLINK, linkMessageLen, 4, 0), func(kind uint16, payload []byte) error {
		if kind != unix.RTM_NEWLINK || len(payload) < linkMessageLen {
			return nil
		}
		if index := binary.NativeEndian.Uint32(payload[4:8]); !skipped[index] {
			out = append(out, index)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// addressTaker takes the address messages of a dump: the own addresses
// of the devices keep accepts are appended to addrs, the others' messages
// are counted and stepped over without being decoded.
type addressTaker struct {
	keep   func(index uint32) bool
	addrs  []netip.Addr
	passed int
}

func (a *addressTaker) take(kind uint16, payload []byte) error {
	if kind != unix.RTM_NEWADDR || len(payload) < addrMessageLen {
		return nil
	}
	index := binary.NativeEndian.Uint32(payload[4:8])
	if !a.keep(index) {
		a.passed++
		return nil
	}
	addr, err := ownAddress(payload[addrMessageLen:])
	if err != nil {
		return fmt.Errorf("decode an address of device %d: %w", index, err)
	}
	if addr.IsValid() {
		a.addrs = append(a.addrs, addr)
	}
	return nil
}

// addressesOf appends the addresses of device index to addrs; a device
// gone meanwhile has none. Messages of other devices (a kernel that ignored
// the filter) are stepped over.
func (s *routeSocket) addressesOf(index uint32, addrs []netip.Addr) ([]netip.Addr, error) {
	a := addressTaker{keep: func(i uint32) bool { return i == index }, addrs: addrs}
	err := s.dump(dumpRequest(unix.RTM_GETADDR, addrMessageLen, 4, index), a.take)
	if errors.Is(err, unix.ENODEV) {
		return a.addrs, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the addresses of device %d: %w", index, err)
	}
	return a.addrs, nil
}

// of lists the addresses of device index from a dump of that device's.
func (l *localAddresses) of(index uint32) ([]netip.Addr, error) {
	return l.read(func(s *routeSocket) ([]netip.Addr, error) { return s.addressesOf(index, nil) })
}

// read runs one caller's dumps on a socket of its own that receives into
// the kept buffer, one caller at a time.
func (l *localAddresses) read(dumps func(*routeSocket) ([]netip.Addr, error)) ([]netip.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := openRouteSocket(l.buf)
	if err != nil {
		return nil, err
	}
	defer func() { l.buf = s.buf; s.close() }()
	return dumps(s)
}

// addressesPerDeviceDump is how many addresses the skipped devices must
// hold, per device read, for a dump per device to beat one dump of every
// address. Measured (BenchmarkKernelLocalAddresses, 110 devices): a dump
// per device costs 11-13 µs a device; one of every address 0.1 µs an
// address at 1k, 0.24-0.35 at 10k and 1 at 30k (30 ms), as the kernel walks
// a device's list from its start for each 32 KiB batch.
const addressesPerDeviceDump = 100

// except lists the addresses of every device but the skipped
// ones: from a dump of each device's, once the skipped ones were seen to
// hold many (kube-ipvs0 at 10k Services: the kernel would write them all
// for each partial sync, to be thrown away), else from one dump of all.
func (l *localAddresses) except(skipped map[uint32]bool) ([]netip.Addr, error) {
	return l.read(func(s *routeSocket) ([]netip.Addr, error) {
		indexes, err := s.linkIndexes(skipped)
		if err != nil {
			return nil, err
		}
		if s.strict && l.skippedLast > addressesPerDeviceDump*len(indexes) {
			return s.addressesByDevice(indexes)
		}
		addrs, n, err := s.allAddressesExcept(skipped)
		if err != nil {
			return nil, err
		}
		l.skippedLast = n // under l.mu: read holds it
		return addrs, nil
	})
}

// addressesByDevice lists the addresses of the given devices, one dump each.
func (s *routeSocket) addressesByDevice(indexes []uint32) ([]netip.Addr, error) {
	var addrs []netip.Addr
	var err error
	for _, index := range indexes {
		if addrs, err = s.addressesOf(index, addrs); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// allAddressesExcept is addressesExcept from one dump of every address,
// with how many were the skipped devices': their messages are stepped
// over without being decoded.
func (s *routeSocket) allAddressesExcept(skipped map[uint32]bool) ([]netip.Addr, int, error) {
	a := addressTaker{keep: func(index uint32) bool { return !skipped[index] }}
	if err := s.dump(dumpRequest(unix.RTM_GETADDR, addrMessageLen, 4, 0), a.take); err != nil {
		return nil, 0, fmt.Errorf("list addresses: %w", err)
	}
	return a.addrs, a.passed, nil
}

// ownAddress is an RTM_NEWADDR message's own address: IFA_LOCAL, which
// differs from IFA_ADDRESS (the peer) on point-to-point devices, else
// IFA_ADDRESS, as netlink.AddrList reports it. attrs are the message's
// attributes; one that runs past them is EBADMSG, as netlink's
// ParseRouteAttr has it: were it IFA_LOCAL, the peer would pass for ours.
func ownAddress(attrs []byte) (netip.Addr, error) {
	var local, address netip.Addr
	for len(attrs) >= attrHeaderLen {
		kind, value, rest, err := netlinkbatch.NextAttr(attrs)
		if err != nil {
			return netip.Addr{}, err
		}
		switch kind {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(value)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(value)
		}
		attrs = rest
	}
	if local.IsValid() {
		return local.Unmap(), nil
	}
	return address.Unmap(), nil
}
