package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// flagListHeader in a list request's IPSET_ATTR_FLAGS dumps the headers
// without the members (IPSET_FLAG_LIST_HEADER of the kernel's
// enum ipset_cmd_flags, which the vendored library does not define).
const flagListHeader = 1 << 2

// dumpBufferSize holds any datagram of a dump: the kernel fills at most
// 32 KiB (the largest receive buffer it remembers, capped there) or
// NLMSG_GOODSIZE per datagram.
const dumpBufferSize = 64 << 10

// errMalformed is a reply that does not parse.
var errMalformed = errors.New("malformed netlink reply")

// dump lists the sets over the kept socket with one IPSET_CMD_LIST
// request: every set, or only the set name when it is not empty; flags go
// to IPSET_ATTR_FLAGS (flagListHeader: headers only). k.mu must be held.
func (k *kernel) dump(name string, flags uint32) ([]Contents, error) {
	sh := k.raw[unix.NETLINK_NETFILTER]
	// No NLM_F_ACK: a dump ends with NLMSG_DONE, a refused one with one
	// NLMSG_ERROR (with NLM_F_ACK, ip_set_dump_start acks a refusal itself
	// before netlink does).
	req := nl.NewNetlinkRequest(nl.IPSET_CMD_LIST|unix.NFNL_SUBSYS_IPSET<<8, unix.NLM_F_DUMP)
	// Numbered as the library numbers the requests on this socket, whose
	// replies each side tells from the others' by that number.
	req.Seq = atomic.AddUint32(&sh.Seq, 1)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_NETLINK, Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	if name != "" {
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(name)))
	}
	if flags != 0 {
		req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_FLAGS|int(nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint32(nil, flags)))
	}
	if err := sh.Socket.Send(req); err != nil {
		return nil, err
	}
	if k.buf == nil {
		k.buf = make([]byte, dumpBufferSize)
	}
	l := listing{seq: req.Seq}
	for !l.done {
		b, err := receive(sh.Socket, k.buf)
		if err == nil {
			err = l.parse(b)
		}
		if err != nil {
			k.renewSocket(sh)
			return nil, err
		}
	}
	if l.err != nil {
		return nil, l.err
	}
	return l.sets, nil
}

// renewSocket replaces sh's socket, on which a dump was left unfinished:
// the kernel keeps that dump open and refuses another on the socket (EBUSY)
// until the rest of it is read. k.mu must be held. If no socket can be
// opened, the old one stays: its next dumps fail until the rest is read.
func (k *kernel) renewSocket(sh *nl.SocketHandle) {
	s, err := k.openInNamespace()
	if err != nil {
		klog.InfoS("Keeping the ipset netlink socket of an unfinished dump", "err", err)
		return
	}
	sh.Socket.Close()
	sh.Socket = s
}

// openInNamespace opens a socket in New's namespace, entering it (setns(2),
// which needs CAP_SYS_ADMIN) only from a thread outside it: a proxy given
// CAP_NET_ADMIN alone, not privileged, can still renew its socket.
func (k *kernel) openInNamespace() (*nl.NetlinkSocket, error) {
	runtime.LockOSThread() // the thread compared is the one that opens
	defer runtime.UnlockOSThread()
	ns := k.ns
	if here, err := netns.Get(); err == nil {
		if here.Equal(k.ns) {
			ns = netns.None()
		}
		here.Close()
	}
	return openSocket(ns)
}

// receive reads one datagram from the kernel into buf, waiting at most the
// socket's receive timeout (EAGAIN after it). The library's socket is
// non-blocking: poll(2) waits.
func receive(s *nl.NetlinkSocket, buf []byte) ([]byte, error) {
	fd := s.GetFd()
	_, timeout := s.GetTimeouts()
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		n, _, flags, from, err := unix.Recvmsg(fd, buf, nil, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EINTR {
			wait := -1
			if !deadline.IsZero() {
				left := time.Until(deadline)
				if left <= 0 {
					return nil, unix.EAGAIN
				}
				wait = int(left/time.Millisecond) + 1
			}
			if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, wait); err != nil && err != unix.EINTR {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, fmt.Errorf("netlink reply larger than %d bytes", len(buf))
		}
		return buf[:n], nil
	}
}

// listing gathers the sets of one dump from its replies: the kernel splits
// a large set over several messages, each naming the set, and only the
// first carries the header.
type listing struct {
	seq  uint32 // of the request; replies to others are dropped
	sets []Contents
	// index finds a set by name when the message is not about the last one.
	index map[string]int
	done  bool
	// err is the first error of the replies: the dump is read to its end
	// (the kernel holds the set while a dump is unfinished, and refuses
	// another dump on the socket) but its sets are not returned.
	err error
}

// parse reads one datagram of replies. It returns an error only when the
// datagram's messages cannot be framed (the dump cannot be followed to its
// end); the replies' own errors go to l.err.
func (l *listing) parse(b []byte) error {
	if l.done {
		return nil
	}
	done, interrupted, err := netlinkbatch.Walk(b, l.seq, func(typ, flags uint16, payload []byte) (bool, error) {
		l.message(typ, payload)
		return false, nil
	})
	if interrupted {
		l.fail(errors.New("dump interrupted"))
	}
	if !done {
		if err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		return nil
	}
	// NLMSG_DONE may carry the dump's errno (a set gone in the middle),
	// NLMSG_ERROR carries the refusal's; Walk wraps a malformed one.
	l.done = true
	if errno, ok := err.(syscall.Errno); ok {
		err = errnoError(int32(errno))
	} else if err != nil {
		err = fmt.Errorf("%w: %w", errMalformed, err)
	}
	l.fail(err)
	return nil
}

// message reads one message of the dump other than its end.
func (l *listing) message(typ uint16, payload []byte) {
	switch typ {
	case unix.NLMSG_NOOP:
		return
	case nl.IPSET_CMD_LIST | unix.NFNL_SUBSYS_IPSET<<8:
	default:
		l.fail(fmt.Errorf("%w: unexpected message type %#x", errMalformed, typ))
		return
	}
	if l.err == nil {
		l.fail(l.ipsetMessage(payload))
	}
}

// fail records the first error.
func (l *listing) fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// errnoError is the error of a negative errno in a reply (nil for 0):
// ipset's own codes start at IPSET_ERR_PRIVATE.
func errnoError(errno int32) error {
	switch {
	case errno == 0:
		return nil
	case errno < 0:
		return fmt.Errorf("%w: errno %d", errMalformed, errno)
	case errno >= nl.IPSET_ERR_PRIVATE:
		return kernelError(nl.IPSetError(errno), syscall.EEXIST)
	}
	return syscall.Errno(errno)
}

// ipsetMessage reads the attributes of one IPSET_CMD_LIST message: the set
// name, the header if the message has one, the members if any.
func (l *listing) ipsetMessage(b []byte) error {
	if len(b) < nl.SizeofNfgenmsg {
		return fmt.Errorf("%w: short ipset message", errMalformed)
	}
	var (
		name, typeName   []byte
		family           uint8
		portFrom, portTo uint16
		elements         uint32
		adt              []byte
		hasADT           bool
	)
	it := attrs(b[nl.SizeofNfgenmsg:])
	for it.next() {
		var err error
		switch it.typ {
		case nl.IPSET_ATTR_SETNAME:
			name = cString(it.val)
		case nl.IPSET_ATTR_TYPENAME:
			typeName = cString(it.val)
		case nl.IPSET_ATTR_FAMILY:
			family, err = attrUint8(it.val)
		case nl.IPSET_ATTR_DATA:
			portFrom, portTo, elements, err = headerData(it.val)
		case nl.IPSET_ATTR_ADT:
			adt, hasADT = it.val, true
		}
		if err != nil {
			return fmt.Errorf("ip set %q: %w", name, err)
		}
	}
	if it.err != nil {
		return fmt.Errorf("ip set %q: %w", name, it.err)
	}
	if len(name) == 0 {
		return fmt.Errorf("%w: ipset message without a set name", errMalformed)
	}
	i := l.find(name)
	if i < 0 {
		i = len(l.sets)
		s := Set{Name: string(name), Type: Type(typeName)}
		switch {
		case s.Type == BitmapPort:
			s.PortRange = fmt.Sprintf("%d-%d", portFrom, portTo)
		case family == unix.AF_INET6:
			s.Family = Inet6
		default:
			s.Family = Inet
		}
		if l.index == nil {
			l.index = map[string]int{}
		}
		l.index[s.Name] = i
		c := Contents{Set: s}
		if hasADT && elements > 0 {
			// Sized once for the members the header announces (their
			// slice grown by appends was most of a 5k-member dump's cost).
			c.Entries = make([]Entry, 0, min(elements, maxEntriesHint))
		}
		l.sets = append(l.sets, c)
	}
	if !hasADT {
		return nil
	}
	c := &l.sets[i]
	var err error
	if c.Entries, err = appendEntries(c.Entries, c.Type, adt); err != nil {
		return fmt.Errorf("ip set %s: %w", c.Name, err)
	}
	return nil
}

// find returns the index of the set named name, or -1.
func (l *listing) find(name []byte) int {
	if n := len(l.sets); n > 0 && l.sets[n-1].Name == string(name) {
		return n - 1
	}
	if i, ok := l.index[string(name)]; ok {
		return i
	}
	return -1
}

// maxEntriesHint bounds the capacity a header's element count reserves
// (1.7 MB); a larger set grows from there.
const maxEntriesHint = 1 << 14

// headerData reads from a header's IPSET_ATTR_DATA the range of a
// bitmap:port set (absent: 0-0) and the number of members.
func headerData(b []byte) (from, to uint16, elements uint32, err error) {
	it := attrs(b)
	for it.next() {
		switch it.typ {
		case nl.IPSET_ATTR_PORT_FROM:
			from, err = attrUint16(&it)
		case nl.IPSET_ATTR_PORT_TO:
			to, err = attrUint16(&it)
		case nl.IPSET_ATTR_ELEMENTS:
			elements, err = attrUint32(&it)
		}
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return from, to, elements, it.err
}

// appendEntries reads the members in an IPSET_ATTR_ADT of a set of type t.
func appendEntries(out []Entry, t Type, adt []byte) ([]Entry, error) {
	it := attrs(adt)
	for it.next() {
		if it.typ != nl.IPSET_ATTR_DATA {
			continue
		}
		r, err := parseEntry(it.val)
		if err != nil {
			return out, err
		}
		out = append(out, r.entry(t))
	}
	return out, it.err
}

// rawEntry is a member as the kernel sends it.
type rawEntry struct {
	ip, ip2            netip.Addr
	port               uint16
	proto, cidr, cidr2 uint8
	hasPort, hasProto  bool
}

// parseEntry reads one member's IPSET_ATTR_DATA.
func parseEntry(b []byte) (rawEntry, error) {
	var r rawEntry
	it := attrs(b)
	for it.next() {
		var err error
		switch it.typ {
		case nl.IPSET_ATTR_IP:
			r.ip, err = attrAddr(&it)
		case nl.IPSET_ATTR_IP2:
			r.ip2, err = attrAddr(&it)
		case nl.IPSET_ATTR_PORT:
			r.port, err = attrUint16(&it)
			r.hasPort = true
		case nl.IPSET_ATTR_PROTO:
			r.proto, err = attrUint8(it.val)
			r.hasProto = true
		case nl.IPSET_ATTR_CIDR:
			r.cidr, err = attrUint8(it.val)
		case nl.IPSET_ATTR_CIDR2:
			r.cidr2, err = attrUint8(it.val)
		}
		if err != nil {
			return r, err
		}
	}
	return r, it.err
}

// entry is the member of a set of type t.
func (r rawEntry) entry(t Type) Entry {
	var e Entry
	ip, ip2 := r.ip.Unmap(), r.ip2.Unmap()
	if r.hasPort {
		e.Port = r.port
	}
	if r.hasProto && t != BitmapPort {
		e.Protocol = protocolName(r.proto)
	}
	switch t {
	case HashNet:
		e.Net = netip.PrefixFrom(ip, int(r.cidr))
	case HashIPPortNet:
		e.IP, e.Net = ip, netip.PrefixFrom(ip2, int(r.cidr2))
	default:
		e.IP, e.IP2 = ip, ip2
	}
	return e
}

// attrAddr reads an address attribute: nested, an IPSET_ATTR_IPADDR_IPV4
// or _IPV6 inside (as the kernel sends them), or the bare address.
func attrAddr(it *attrIter) (netip.Addr, error) {
	if it.flags&nl.NLA_F_NESTED == 0 {
		return addrFrom(it.val)
	}
	var a netip.Addr
	inner := attrs(it.val)
	for inner.next() {
		if inner.typ != nl.IPSET_ATTR_IPADDR_IPV4 && inner.typ != nl.IPSET_ATTR_IPADDR_IPV6 {
			continue
		}
		var err error
		if a, err = addrFrom(inner.val); err != nil {
			return a, err
		}
	}
	return a, inner.err
}

// addrFrom reads a 4- or 16-byte address.
func addrFrom(b []byte) (netip.Addr, error) {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)), nil
	case 16:
		return netip.AddrFrom16([16]byte(b)), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: address of %d bytes", errMalformed, len(b))
}

func attrUint8(b []byte) (uint8, error) {
	if len(b) < 1 {
		return 0, fmt.Errorf("%w: empty attribute", errMalformed)
	}
	return b[0], nil
}

// attrUint16 reads a 16-bit attribute, in network order when flagged so
// (as the kernel sends ports).
func attrUint16(it *attrIter) (uint16, error) {
	if len(it.val) < 2 {
		return 0, fmt.Errorf("%w: attribute %d of %d bytes", errMalformed, it.typ, len(it.val))
	}
	if it.flags&nl.NLA_F_NET_BYTEORDER != 0 {
		return binary.BigEndian.Uint16(it.val), nil
	}
	return binary.NativeEndian.Uint16(it.val), nil
}

// attrUint32 reads a 32-bit attribute, in network order when flagged so.
func attrUint32(it *attrIter) (uint32, error) {
	if len(it.val) < 4 {
		return 0, fmt.Errorf("%w: attribute %d of %d bytes", errMalformed, it.typ, len(it.val))
	}
	if it.flags&nl.NLA_F_NET_BYTEORDER != 0 {
		return binary.BigEndian.Uint32(it.val), nil
	}
	return binary.NativeEndian.Uint32(it.val), nil
}

// cString is a NUL-terminated string's bytes without the NUL.
func cString(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// attrIter walks a list of netlink attributes in place: no copies, no
// goroutines. After next returns false, err says whether the list was
// malformed.
type attrIter struct {
	rest  []byte
	typ   uint16 // without the flags
	flags uint16 // NLA_F_NESTED, NLA_F_NET_BYTEORDER
	val   []byte
	err   error
}

func attrs(b []byte) attrIter { return attrIter{rest: b} }

func (it *attrIter) next() bool {
	if len(it.rest) == 0 || it.err != nil {
		return false
	}
	if len(it.rest) < unix.SizeofNlAttr {
		it.err = fmt.Errorf("%w: %d bytes left after the attributes", errMalformed, len(it.rest))
		return false
	}
	t, val, rest, err := netlinkbatch.NextAttr(it.rest)
	if err != nil {
		it.err = fmt.Errorf("%w: %w", errMalformed, err)
		return false
	}
	it.typ, it.flags, it.val, it.rest = t&nl.NLA_TYPE_MASK, t&^nl.NLA_TYPE_MASK, val, rest
	return true
}
