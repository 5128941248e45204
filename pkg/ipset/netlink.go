package ipset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// kernel is Interface over the ipset netlink protocol, in the network
// namespace of the thread that called New, over one socket: the library's
// package-level calls open and close a socket per request, which was a
// third of the cost of adding a member (start-up at 5k Services in the VM).
type kernel struct {
	// mu serialises requests: replies on a shared socket are matched by
	// sequence number, and a reply read by the wrong caller is dropped.
	mu     sync.Mutex
	handle *netlink.Handle
	// raw is the socket of the requests built here (the handle's is not
	// exported); nil: each opens its own.
	raw map[int]*nl.SocketHandle
	// buf receives List's replies on raw (under mu).
	buf []byte
	// ns is New's network namespace, where a socket that replaces raw's
	// (renewSocket) is opened; not open: the calling thread's.
	ns netns.NsHandle
}

// New returns the kernel's IP sets. Set comments are not supported by the
// netlink library and are dropped; bitmap:port sets read back with an empty
// Family. If no socket can be opened now, each request opens its own, and
// List goes through the library.
func New() Interface {
	k := &kernel{handle: &netlink.Handle{}, ns: netns.None()}
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err == nil {
		var s *nl.NetlinkSocket
		if s, err = openTimedSocket(h); err == nil {
			k.handle, k.raw = h, map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: {Socket: s}}
			if ns, nsErr := netns.Get(); nsErr == nil {
				k.ns = ns
			}
		} else {
			h.Close()
		}
	}
	if err != nil {
		klog.V(2).InfoS("Opening a netlink socket per ipset request", "err", err)
	}
	return k
}

// openTimedSocket gives h's sockets and a new one for hand-built requests
// the timeouts the library gives the sockets it opens per request
// (nl.SocketTimeoutTv), so that a reply that never comes fails the request
// instead of holding the lock.
func openTimedSocket(h *netlink.Handle) (*nl.NetlinkSocket, error) {
	if err := h.SetSocketTimeout(time.Duration(nl.SocketTimeoutTv.Nano())); err != nil {
		return nil, err
	}
	return openSocket(netns.None())
}

// openSocket opens a netfilter netlink socket with the library's
// per-request timeouts, in ns if it is open (the thread enters it: that
// needs CAP_SYS_ADMIN), else in the calling thread's namespace.
func openSocket(ns netns.NsHandle) (*nl.NetlinkSocket, error) {
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	if err = s.SetSendTimeout(&nl.SocketTimeoutTv); err == nil {
		err = s.SetReceiveTimeout(&nl.SocketTimeoutTv)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// List reads the sets over the kept socket with our own parser: the
// library's starts a goroutine per attribute list and hands every attribute
// over a channel, which was most of an idle proxier's CPU at 5k Services.
// With keep, it lists the headers first and dumps only the kept sets, one
// request each, so that a proxier does not read the other family's members.
func (k *kernel) List(keep func(name string) bool) ([]Contents, error) {
	if k.raw == nil {
		return k.listWithLibrary(keep)
	}
	if keep == nil {
		sets, err := k.locked(func() ([]Contents, error) { return k.dump("", 0) })
		if err != nil {
			return nil, fmt.Errorf("list ip sets: %w", err)
		}
		return sets, nil
	}
	headers, err := k.locked(func() ([]Contents, error) { return k.dump("", flagListHeader) })
	if err != nil {
		return nil, fmt.Errorf("list ip set headers: %w", err)
	}
	// keep runs without the lock: it may call k.
	var names []string
	for _, h := range headers {
		if keep(h.Name) {
			names = append(names, h.Name)
		}
	}
	var sets []Contents
	for _, name := range names {
		one, err := k.locked(func() ([]Contents, error) { return k.dump(name, 0) })
		switch {
		case errors.Is(err, syscall.ENOENT):
			continue // destroyed since the headers were listed
		case err != nil:
			return nil, fmt.Errorf("list ip set %s: %w", name, err)
		}
		sets = append(sets, one...)
	}
	return sets, nil
}

// locked runs one dump alone on the socket.
func (k *kernel) locked(dump func() ([]Contents, error)) ([]Contents, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return dump()
}

// listWithLibrary is List through the library, when New could not open a
// socket: every set, then those kept.
func (k *kernel) listWithLibrary(keep func(name string) bool) ([]Contents, error) {
	var results []netlink.IPSetResult
	err := k.guard(func() (err error) {
		results, err = k.handle.IpsetListAll()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list ip sets: %w", kernelError(err, syscall.EEXIST))
	}
	sets := mergeResults(results)
	if keep != nil {
		sets = slices.DeleteFunc(sets, func(c Contents) bool { return !keep(c.Name) })
	}
	return sets, nil
}

// mergeResults turns the library's dump messages into sets: the kernel
// splits a large set over several messages, each naming the set, and only
// the first carries the header.
func mergeResults(results []netlink.IPSetResult) []Contents {
	var sets []Contents
	index := map[string]int{}
	for _, r := range results {
		i, seen := index[r.SetName]
		if !seen {
			i = len(sets)
			index[r.SetName] = i
			sets = append(sets, Contents{Set: setFromKernel(r)})
		}
		for _, e := range r.Entries {
			sets[i].Entries = append(sets[i].Entries, entryFromKernel(sets[i].Type, e))
		}
	}
	return sets
}

// setFromKernel reads a set header from a library's dump message.
func setFromKernel(r netlink.IPSetResult) Set {
	s := Set{Name: r.SetName, Type: Type(r.TypeName)}
	switch {
	case s.Type == BitmapPort:
		s.PortRange = fmt.Sprintf("%d-%d", r.PortFrom, r.PortTo)
	case r.Family == unix.AF_INET6:
		s.Family = Inet6
	default:
		s.Family = Inet
	}
	return s
}

// entryFromKernel reads a library's member of a set of type t.
func entryFromKernel(t Type, k netlink.IPSetEntry) Entry {
	var r rawEntry
	r.ip, _ = netip.AddrFromSlice(k.IP)
	r.ip2, _ = netip.AddrFromSlice(k.IP2)
	r.cidr, r.cidr2 = k.CIDR, k.CIDR2
	if k.Port != nil {
		r.port, r.hasPort = *k.Port, true
	}
	if k.Protocol != nil {
		r.proto, r.hasProto = *k.Protocol, true
	}
	return r.entry(t)
}

func (k *kernel) CreateSet(s Set) error {
	s, err := validateSet(s)
	if err != nil {
		return fmt.Errorf("create ip set %s: %w", s.Name, err)
	}
	opts := netlink.IpsetCreateOptions{Family: unix.AF_INET}
	if s.Family == Inet6 {
		opts.Family = unix.AF_INET6
	}
	if s.Type == BitmapPort {
		opts.PortFrom, opts.PortTo, _ = parsePortRange(s.PortRange)
	}
	klog.V(4).InfoS("Creating ip set", "set", s.Name, "type", s.Type, "family", s.Family)
	err = k.guard(func() error { return k.handle.IpsetCreate(s.Name, string(s.Type), opts) })
	if err != nil {
		return fmt.Errorf("create ip set %s: %w", s.Name, kernelError(err, syscall.EEXIST))
	}
	return nil
}

func (k *kernel) DestroySet(name string) error {
	klog.V(4).InfoS("Destroying ip set", "set", name)
	// The library's IpsetDestroy omits NLM_F_EXCL, with which the kernel
	// answers ENOENT for a missing set instead of success.
	setName := nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(name))
	if err := k.request(nl.IPSET_CMD_DESTROY, setName); err != nil {
		return fmt.Errorf("destroy ip set %s: %w", name, kernelError(err, syscall.EEXIST))
	}
	return nil
}

func (k *kernel) AddEntry(set string, e Entry) error {
	klog.V(4).InfoS("Adding ip set entry", "set", set, "entry", e)
	if err := k.addDel(nl.IPSET_CMD_ADD, k.handle.IpsetAdd, set, e); err != nil {
		return fmt.Errorf("add %s to ip set %s: %w", e, set, kernelError(err, syscall.EEXIST))
	}
	return nil
}

func (k *kernel) DeleteEntry(set string, e Entry) error {
	klog.V(4).InfoS("Deleting ip set entry", "set", set, "entry", e)
	if err := k.addDel(nl.IPSET_CMD_DEL, k.handle.IpsetDel, set, e); err != nil {
		return fmt.Errorf("delete %s from ip set %s: %w", e, set, kernelError(err, syscall.ENOENT))
	}
	return nil
}

// addDel encodes e and sends it with op (IpsetAdd or IpsetDel), or itself
// with cmd for a bitmap:port member: the library adds a protocol attribute
// to every port, which the kernel's bitmap:port refuses.
func (k *kernel) addDel(cmd int, op func(string, *netlink.IPSetEntry) error, set string, e Entry) error {
	if e == (Entry{Port: e.Port}) {
		return k.request(cmd, nl.NewRtAttr(nl.IPSET_ATTR_SETNAME, nl.ZeroTerminated(set)), portData(e.Port))
	}
	ke, err := entryToKernel(e)
	if err != nil {
		return err
	}
	return k.guard(func() error { return op(set, ke) })
}

// portData is the data attribute of a bitmap:port member.
func portData(port uint16) *nl.RtAttr {
	data := nl.NewRtAttr(nl.IPSET_ATTR_DATA|int(nl.NLA_F_NESTED), nil)
	data.AddChild(nl.NewRtAttr(nl.IPSET_ATTR_PORT|int(nl.NLA_F_NET_BYTEORDER), binary.BigEndian.AppendUint16(nil, port)))
	return data
}

// request sends one ipset command, built with the library's nl layer, for
// the cases its high-level API gets wrong. NLM_F_EXCL makes the kernel
// refuse what exists on add and what is missing on delete and destroy.
func (k *kernel) request(cmd int, attrs ...nl.NetlinkRequestData) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	req := nl.NewNetlinkRequest(cmd|unix.NFNL_SUBSYS_IPSET<<8, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_EXCL)
	req.Sockets = k.raw
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_NETLINK, Version: nl.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(nl.IPSET_ATTR_PROTOCOL, nl.Uint8Attr(nl.IPSET_PROTOCOL)))
	for _, attr := range attrs {
		req.AddData(attr)
	}
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	var errno syscall.Errno
	if errors.As(err, &errno) && errno >= nl.IPSET_ERR_PRIVATE {
		return nl.IPSetError(errno)
	}
	return err
}

// entryToKernel encodes an entry without knowing its set's type: a network
// is the second element when an IP comes first (hash:ip,port,net), else the
// only one (hash:net); a port without IP or network is a bitmap:port member.
// Where the library would silently change the request (drop a /0 CIDR,
// default a missing protocol to tcp) the kernel's error is returned instead.
func entryToKernel(e Entry) (*netlink.IPSetEntry, error) {
	k := &netlink.IPSetEntry{}
	if e.IP.IsValid() {
		k.IP = e.IP.Unmap().AsSlice()
	}
	if e.IP2.IsValid() {
		k.IP2 = e.IP2.Unmap().AsSlice()
	}
	if e.Net.IsValid() {
		if e.Net.Bits() == 0 || e.IP2.IsValid() {
			return nil, ipsetError{code: nl.IPSET_ERR_INVALID_CIDR, errno: syscall.EINVAL}
		}
		addr, bits := e.Net.Addr().Unmap().AsSlice(), uint8(e.Net.Bits())
		if e.IP.IsValid() {
			k.IP2, k.CIDR2 = addr, bits
		} else {
			k.IP, k.CIDR = addr, bits
		}
	}
	port := e.Port
	switch {
	case e.Protocol != "":
		num, ok := protocolNumber(e.Protocol)
		if !ok {
			return nil, ipsetError{code: errInvalidProto, errno: syscall.EINVAL}
		}
		k.Protocol, k.Port = &num, &port
	case e.IP.IsValid() && e.Port != 0:
		return nil, ipsetError{code: errMissingProto, errno: syscall.EINVAL}
	case !e.IP.IsValid() && !e.Net.IsValid():
		k.Port = &port
	}
	return k, nil
}

// kernelError gives an error from the library the errno it means: the
// kernel answers IPSET_ERR_EXIST both to a duplicate (EEXIST) and to
// deleting a missing entry (ENOENT), so the caller says which.
func kernelError(err error, existErrno syscall.Errno) error {
	var code nl.IPSetError
	if !errors.As(err, &code) {
		return err
	}
	switch code {
	case nl.IPSET_ERR_EXIST:
		return ipsetError{code: code, errno: existErrno}
	case nl.IPSET_ERR_BUSY, nl.IPSET_ERR_REFERENCED:
		return ipsetError{code: code, errno: syscall.EBUSY}
	case nl.IPSET_ERR_MAX_SETS:
		return ipsetError{code: code, errno: syscall.ENOSPC}
	}
	return ipsetError{code: code, errno: syscall.EINVAL}
}

// guard runs one library call alone on the sockets and turns a panic of the
// library into an error: it asserts that every request error is a
// syscall.Errno, which socket errors are not.
func (k *kernel) guard(call func() error) (err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("netlink ipset request: %v", r)
		}
	}()
	return call()
}
