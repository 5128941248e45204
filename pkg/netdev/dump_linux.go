package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dumpBufferSize is twice the largest batch of messages the kernel hands a
// dump reader at once (32 KiB): a batch never arrives cut.
const dumpBufferSize = 64 << 10

// dumpBuffer receives address dumps, kept for the life of the process.
// Every partial sync reads the node's addresses, and kube-ipvs0 holds one
// per Service IP: netlink's library allocates a fresh 64 KiB buffer for
// each batch and a message slice for its contents, 2.1 MiB a sync at 10k
// Services, only for those addresses to be skipped. A sync.Pool would not
// do: the collections between two syncs empty it.
var dumpBuffer struct {
	sync.Mutex
	b []byte
}

// Sizes of the fixed parts of the messages read and written here.
const (
	headerLen      = unix.SizeofNlMsghdr  // nlmsghdr
	addrMessageLen = unix.SizeofIfAddrmsg // ifaddrmsg
	attrHeaderLen  = unix.SizeofRtAttr    // rtattr
)

// dumpAddressesExcept lists the addresses of every device but those whose
// index is in skipped, from one RTM_GETADDR dump decoded in place: a
// skipped device's addresses are stepped over without being decoded or
// copied. An interrupted dump (the table changed while it was read) is an
// error wrapping netlink.ErrDumpInterrupted.
func dumpAddressesExcept(skipped map[uint32]bool) ([]netip.Addr, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open a netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 60}); err != nil {
		return nil, fmt.Errorf("set the netlink socket's receive timeout: %w", err)
	}
	const seq = 1
	if err := unix.Sendto(fd, addressDumpRequest(seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("request the address dump: %w", err)
	}
	dumpBuffer.Lock()
	defer dumpBuffer.Unlock()
	if dumpBuffer.b == nil {
		dumpBuffer.b = make([]byte, dumpBufferSize)
	}
	d := addressDump{seq: seq, skipped: skipped}
	for !d.done {
		n, _, err := unix.Recvfrom(fd, dumpBuffer.b, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the address dump: %w", err)
		}
		if err := d.parse(dumpBuffer.b[:n]); err != nil {
			return nil, err
		}
	}
	if d.interrupted {
		return nil, netlink.ErrDumpInterrupted
	}
	return d.addrs, nil
}

// addressDumpRequest is an RTM_GETADDR dump request of both families.
func addressDumpRequest(seq uint32) []byte {
	req := make([]byte, headerLen+addrMessageLen) // ifaddrmsg all zero: AF_UNSPEC, every device
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.RTM_GETADDR)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:12], seq)
	return req
}

// addressDump is an address dump being read.
type addressDump struct {
	seq         uint32
	skipped     map[uint32]bool
	addrs       []netip.Addr
	done        bool
	interrupted bool
}

// parse takes in one batch of messages.
func (d *addressDump) parse(b []byte) error {
	for len(b) >= headerLen && !d.done {
		size := int(binary.NativeEndian.Uint32(b[0:4]))
		if size < headerLen || size > len(b) {
			return fmt.Errorf("read the address dump: a message of %d bytes in %d: %w", size, len(b), syscall.EBADMSG)
		}
		kind, flags := binary.NativeEndian.Uint16(b[4:6]), binary.NativeEndian.Uint16(b[6:8])
		if binary.NativeEndian.Uint32(b[8:12]) == d.seq {
			d.interrupted = d.interrupted || flags&unix.NLM_F_DUMP_INTR != 0
			if err := d.take(kind, b[headerLen:size]); err != nil {
				return err
			}
		}
		b = b[min(nlmsgAlign(size), len(b)):]
	}
	return nil
}

// take handles one message of the dump: an address, the end, or an error.
func (d *addressDump) take(kind uint16, payload []byte) error {
	switch kind {
	case unix.NLMSG_DONE, unix.NLMSG_ERROR:
		d.done = true
		if len(payload) >= 4 {
			if errno := int32(binary.NativeEndian.Uint32(payload[0:4])); errno < 0 {
				return fmt.Errorf("address dump: %w", syscall.Errno(-errno))
			}
		}
	case unix.RTM_NEWADDR:
		if len(payload) < addrMessageLen {
			return fmt.Errorf("read the address dump: an address message of %d bytes: %w", len(payload), syscall.EBADMSG)
		}
		if index := binary.NativeEndian.Uint32(payload[4:8]); d.skipped[index] {
			return nil
		}
		if addr := ownAddress(payload[addrMessageLen:]); addr.IsValid() {
			d.addrs = append(d.addrs, addr)
		}
	}
	return nil
}

// ownAddress is an RTM_NEWADDR message's own address: IFA_LOCAL, which
// differs from IFA_ADDRESS (the peer) on point-to-point devices, else
// IFA_ADDRESS, as netlink.AddrList reports it. attrs are the message's
// attributes; a cut one ends them.
func ownAddress(attrs []byte) netip.Addr {
	var local, address netip.Addr
	for len(attrs) >= attrHeaderLen {
		size := int(binary.NativeEndian.Uint16(attrs[0:2]))
		if size < attrHeaderLen || size > len(attrs) {
			break
		}
		switch binary.NativeEndian.Uint16(attrs[2:4]) {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(attrs[attrHeaderLen:size])
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(attrs[attrHeaderLen:size])
		}
		attrs = attrs[min(rtaAlign(size), len(attrs)):]
	}
	if local.IsValid() {
		return local.Unmap()
	}
	return address.Unmap()
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }
