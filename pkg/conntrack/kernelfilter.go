package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Kernel-side dump filtering (ctnetlink CTA_FILTER, Linux 5.8+,
// nf_conntrack_netlink.c ctnetlink_filter_match): the kernel still walks
// its whole table, but it sends only the entries that match the filter,
// instead of every entry to be parsed and matched here. Linux 6.1 accepts
// CTA_FILTER in dumps only (a flush with it is EOPNOTSUPP), so the matching
// entries are then deleted one by one by their tuple and id.
const (
	ctaFilter           = 25 // CTA_FILTER in enum ctattr_type
	ctaFilterOrigFlags  = 1  // CTA_FILTER_ORIG_FLAGS
	ctaFilterReplyFlags = 2  // CTA_FILTER_REPLY_FLAGS

	filterIPSrc     = 1 << 0 // CTA_FILTER_F_CTA_IP_SRC
	filterIPDst     = 1 << 1 // CTA_FILTER_F_CTA_IP_DST
	filterProtoNum  = 1 << 3 // CTA_FILTER_F_CTA_PROTO_NUM
	filterPortSrc   = 1 << 4 // CTA_FILTER_F_CTA_PROTO_SRC_PORT
	filterPortDst   = 1 << 5 // CTA_FILTER_F_CTA_PROTO_DST_PORT
	ctaIPv4Src      = nl.CTA_IP_V4_SRC
	ctaIPv4Dst      = nl.CTA_IP_V4_DST
	ctaProtoSrcPort = nl.CTA_PROTO_SRC_PORT
	ctaProtoDstPort = nl.CTA_PROTO_DST_PORT
)

// maxFilteredDumps is how many filters of one table are deleted with a
// kernel-filtered dump each; with more, one unfiltered dump is cheaper
// than that many walks of the table (measured in make bench's flush cost).
const maxFilteredDumps = 8

// errFilterIgnored says that the kernel answered a filtered dump with an
// entry the filter excludes: it predates CTA_FILTER (Linux < 5.8) and
// ignored the attribute.
var errFilterIgnored = errors.New("kernel ignored the conntrack dump filter (CTA_FILTER needs Linux 5.8)")

// kernelFilter is what of a Filter the kernel matches: the protocol, IPv4
// addresses and TCP/UDP ports. IPv6 addresses are left to matches, because
// Linux 6.1's ctnetlink_filter_match_tuple compares them inverted (it skips
// an entry when !ipv6_addr_cmp, that is when the addresses are equal); SCTP
// ports too (the kernel does not compare them).
type kernelFilter struct {
	Filter
	family netlink.InetFamily
}

func (k kernelFilter) addrs() bool { return k.family == unix.AF_INET }

func (k kernelFilter) ports() bool {
	return k.Protocol == ProtoTCP || k.Protocol == ProtoUDP
}

// origFlags and replyFlags are the CTA_FILTER flags of the fields set.
func (k kernelFilter) origFlags() uint32 {
	flags := uint32(filterProtoNum)
	if k.addrs() && k.OrigDst.IsValid() {
		flags |= filterIPDst
	}
	if k.ports() && k.OrigDstPort != 0 {
		flags |= filterPortDst
	}
	return flags
}

func (k kernelFilter) replyFlags() uint32 {
	var flags uint32
	if k.addrs() && k.ReplySrc.IsValid() {
		flags |= filterIPSrc
	}
	if k.ports() && k.ReplySrcPort != 0 {
		flags |= filterPortSrc
	}
	if flags != 0 {
		flags |= filterProtoNum
	}
	return flags
}

// excludes reports whether the kernel, had it applied the filter, would
// not have sent e.
func (k kernelFilter) excludes(e Entry) bool {
	reduced := Filter{Protocol: k.Protocol}
	if k.addrs() {
		reduced.OrigDst, reduced.ReplySrc = k.OrigDst, k.ReplySrc
	}
	if k.ports() {
		reduced.OrigDstPort, reduced.ReplySrcPort = k.OrigDstPort, k.ReplySrcPort
	}
	return !reduced.matches(e)
}

// attrs are the dump request's attributes: the tuples holding the values
// and CTA_FILTER with the flags saying which of them to compare.
func (k kernelFilter) attrs() []*nl.RtAttr {
	orig := tupleAttr(nl.CTA_TUPLE_ORIG, k.Protocol, netip.Addr{}, k.OrigDst, 0, k.OrigDstPort)
	filter := nl.NewRtAttr(ctaFilter|int(nl.NLA_F_NESTED), nil)
	filter.AddRtAttr(ctaFilterOrigFlags, nl.Uint32Attr(k.origFlags()))
	filter.AddRtAttr(ctaFilterReplyFlags, nl.Uint32Attr(k.replyFlags()))
	attrs := []*nl.RtAttr{orig, filter}
	if k.replyFlags() != 0 {
		attrs = append(attrs, tupleAttr(nl.CTA_TUPLE_REPLY, k.Protocol, k.ReplySrc, netip.Addr{}, k.ReplySrcPort, 0))
	}
	return attrs
}

// tupleAttr writes a CTA_TUPLE_ORIG or _REPLY with the given fields (the
// IPv4 addresses that are valid, the ports that are not zero).
func tupleAttr(kind int, proto uint8, src, dst netip.Addr, srcPort, dstPort uint16) *nl.RtAttr {
	tuple := nl.NewRtAttr(kind|int(nl.NLA_F_NESTED), nil)
	ip := tuple.AddRtAttr(nl.CTA_TUPLE_IP|int(nl.NLA_F_NESTED), nil)
	for _, a := range []struct {
		kind int
		addr netip.Addr
	}{{ctaIPv4Src, src}, {ctaIPv4Dst, dst}} {
		if a.addr.Unmap().Is4() {
			b := a.addr.Unmap().As4()
			ip.AddRtAttr(a.kind, b[:])
		}
	}
	p := tuple.AddRtAttr(nl.CTA_TUPLE_PROTO|int(nl.NLA_F_NESTED), nil)
	p.AddRtAttr(nl.CTA_PROTO_NUM, nl.Uint8Attr(proto))
	if srcPort != 0 {
		p.AddRtAttr(ctaProtoSrcPort, nl.BEUint16Attr(srcPort))
	}
	if dstPort != 0 {
		p.AddRtAttr(ctaProtoDstPort, nl.BEUint16Attr(dstPort))
	}
	return tuple
}

// deleteFiltered is one pass for one filter: a kernel-filtered dump of the
// table, then the deletion of each entry it returned that f matches.
func deleteFiltered(k kernelFilter) (int, error) {
	return deleteFromDump(k.family, k.attrs(), func(e Entry) (bool, error) {
		if k.excludes(e) {
			return false, errFilterIgnored
		}
		return k.matches(e), nil
	})
}

// deleteFromDump dumps the table of a family (filtered by the kernel when
// attrs are given) and deletes the entries match accepts; an error from
// match ends the pass.
func deleteFromDump(family netlink.InetFamily, attrs []*nl.RtAttr, match func(Entry) (bool, error)) (int, error) {
	req := conntrackRequest(nl.IPCTNL_MSG_CT_GET, unix.NLM_F_DUMP, family)
	for _, a := range attrs {
		req.AddData(a)
	}
	msgs, dumpErr := req.Execute(unix.NETLINK_NETFILTER, 0)
	if dumpErr != nil && !errors.Is(dumpErr, ErrDumpInterrupted) {
		if len(attrs) > 0 && (errors.Is(dumpErr, unix.EOPNOTSUPP) || errors.Is(dumpErr, unix.EINVAL)) {
			return 0, fmt.Errorf("%w: %w", errFilterIgnored, dumpErr)
		}
		return 0, dumpErr
	}
	deleted := 0
	var errs []error
	for _, msg := range msgs {
		e, err := entryFromMessage(msg)
		if err != nil {
			return deleted, err
		}
		ok, err := match(e)
		if err != nil {
			return deleted, err
		}
		if !ok {
			continue
		}
		removed, err := deleteMessage(family, msg)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", e, err))
			continue
		}
		if removed {
			deleted++
		}
	}
	// An interrupted dump deleted what it returned; the retry finds the rest.
	return deleted, errors.Join(append(errs, dumpErr)...)
}

// deleteMessage deletes the entry of a dumped message, found by its reply
// tuple and checked by its id (deleteRequest). An entry already gone is
// not an error, and deleted says it was not this call's.
func deleteMessage(family netlink.InetFamily, msg []byte) (deleted bool, err error) {
	req, err := deleteRequest(family, msg)
	if err != nil {
		return false, err
	}
	_, err = req.Execute(unix.NETLINK_NETFILTER, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone since the dump (the kernel's own expiry, or another
		// deleter): not ours to count.
		return false, nil
	}
	return err == nil, err
}

// deleteRequest is the deletion of a dumped entry by its reply tuple, id
// and zone, not by its original tuple. A client that reuses its source
// port re-opens the TIME_WAIT entry of its last connection as a new entry
// with the same original tuple, and the kernel often gives that entry the
// same id (Linux 6.1's nf_ct_get_id hashes the entry's address and
// original tuple, and the new entry takes the slot the old one freed): by
// original tuple and id, the deletion of the old entry dumped just before
// would delete the new connection's (which then loses its NAT mapping and
// is reset). The reply tuple holds the endpoint that answered and the
// port masquerading chose, which the new entry does not share. A message
// without a reply tuple or an id is refused: the kernel flushes the table
// on a deletion that names no tuple.
func deleteRequest(family netlink.InetFamily, msg []byte) (*nl.NetlinkRequest, error) {
	if len(msg) < nfgenmsgLen {
		return nil, fmt.Errorf("conntrack message of %d bytes: %w", len(msg), syscall.EBADMSG)
	}
	attrs, err := parseAttrs(msg[nfgenmsgLen:])
	if err != nil {
		return nil, fmt.Errorf("parse conntrack message: %w", err)
	}
	req := conntrackRequest(nl.IPCTNL_MSG_CT_DELETE, unix.NLM_F_ACK, family)
	var reply, id bool
	for _, a := range attrs {
		switch t := a.Attr.Type & nl.NLA_TYPE_MASK; t {
		case nl.CTA_TUPLE_REPLY, nl.CTA_ID, nl.CTA_ZONE:
			reply, id = reply || t == nl.CTA_TUPLE_REPLY, id || t == nl.CTA_ID
			req.AddData(nl.NewRtAttr(int(a.Attr.Type), a.Value))
		}
	}
	if !reply || !id {
		return nil, fmt.Errorf("conntrack message without its reply tuple or id (reply %v, id %v): %w", reply, id, syscall.EBADMSG)
	}
	return req, nil
}

const nfgenmsgLen = 4

func conntrackRequest(op, flags int, family netlink.InetFamily) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(netlink.ConntrackTable<<8|op, flags)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(family), Version: nl.NFNETLINK_V0})
	return req
}

// entryFromMessage reads the Entry of a ctnetlink message (nfgenmsg and
// attributes, as a dump returns it).
func entryFromMessage(msg []byte) (Entry, error) {
	if len(msg) < nfgenmsgLen {
		return Entry{}, fmt.Errorf("conntrack message of %d bytes: %w", len(msg), syscall.EBADMSG)
	}
	attrs, err := parseAttrs(msg[nfgenmsgLen:])
	if err != nil {
		return Entry{}, fmt.Errorf("parse conntrack message: %w", err)
	}
	var e Entry
	for _, a := range attrs {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case nl.CTA_TUPLE_ORIG:
			var src netip.Addr
			var srcPort uint16
			if err := parseTuple(a.Value, &e.Protocol, &src, &srcPort, &e.OrigDst, &e.OrigDstPort); err != nil {
				return Entry{}, err
			}
			e.OrigSrc, e.OrigSrcPort = src, srcPort
		case nl.CTA_TUPLE_REPLY:
			var proto uint8
			var dst netip.Addr
			var dstPort uint16
			if err := parseTuple(a.Value, &proto, &e.ReplySrc, &e.ReplySrcPort, &dst, &dstPort); err != nil {
				return Entry{}, err
			}
		}
	}
	return e, nil
}

// parseTuple reads a CTA_TUPLE_* attribute's addresses, ports and protocol.
func parseTuple(b []byte, proto *uint8, src *netip.Addr, srcPort *uint16, dst *netip.Addr, dstPort *uint16) error {
	attrs, err := parseAttrs(b)
	if err != nil {
		return fmt.Errorf("parse conntrack tuple: %w", err)
	}
	for _, a := range attrs {
		kind := a.Attr.Type & nl.NLA_TYPE_MASK
		if kind != nl.CTA_TUPLE_IP && kind != nl.CTA_TUPLE_PROTO {
			continue // not nested: CTA_TUPLE_ZONE
		}
		inner, err := parseAttrs(a.Value)
		if err != nil {
			return fmt.Errorf("parse conntrack tuple: %w", err)
		}
		for _, v := range inner {
			t := v.Attr.Type & nl.NLA_TYPE_MASK
			switch kind {
			case nl.CTA_TUPLE_IP:
				addr, _ := netip.AddrFromSlice(v.Value)
				switch t {
				case nl.CTA_IP_V4_SRC, nl.CTA_IP_V6_SRC:
					*src = addr.Unmap()
				case nl.CTA_IP_V4_DST, nl.CTA_IP_V6_DST:
					*dst = addr.Unmap()
				}
			case nl.CTA_TUPLE_PROTO:
				switch {
				case t == nl.CTA_PROTO_NUM && len(v.Value) == 1:
					*proto = v.Value[0]
				case t == ctaProtoSrcPort && len(v.Value) == 2:
					*srcPort = binary.BigEndian.Uint16(v.Value)
				case t == ctaProtoDstPort && len(v.Value) == 2:
					*dstPort = binary.BigEndian.Uint16(v.Value)
				}
			}
		}
	}
	return nil
}

// parseAttrs is nl.ParseRouteAttr refusing a list whose length is not a
// multiple of the attributes' alignment: the kernel pads every attribute,
// and ParseRouteAttr slices past the end of a list whose last attribute
// lacks its padding (a panic).
func parseAttrs(b []byte) ([]syscall.NetlinkRouteAttr, error) {
	if len(b)%unix.NLA_ALIGNTO != 0 {
		return nil, fmt.Errorf("attribute list of %d bytes, its last attribute not padded: %w", len(b), syscall.EBADMSG)
	}
	return nl.ParseRouteAttr(b)
}
