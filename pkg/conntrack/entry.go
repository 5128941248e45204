package conntrack

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Entry is the part of a conntrack entry the filters look at: the
// original tuple and the source of the reply tuple (the endpoint that
// answers, after DNAT). Comparable with ==.
type Entry struct {
	Protocol     uint8
	OrigSrc      netip.Addr
	OrigSrcPort  uint16
	OrigDst      netip.Addr
	OrigDstPort  uint16
	ReplySrc     netip.Addr
	ReplySrcPort uint16
}

// String writes "tcp 10.0.0.1:40000 -> 10.96.0.10:80 reply from 10.244.1.5:8080".
func (e Entry) String() string {
	return fmt.Sprintf("%s %s -> %s reply from %s", protocolName(e.Protocol),
		netip.AddrPortFrom(e.OrigSrc, e.OrigSrcPort), netip.AddrPortFrom(e.OrigDst, e.OrigDstPort),
		netip.AddrPortFrom(e.ReplySrc, e.ReplySrcPort))
}

// String writes the filter's set fields, e.g. "tcp dst 10.96.0.10:80 reply-src 10.244.1.5".
func (f Filter) String() string {
	s := protocolName(f.Protocol)
	if f.OrigDst.IsValid() || f.OrigDstPort != 0 {
		s += " dst " + addrPortText(f.OrigDst, f.OrigDstPort)
	}
	if f.ReplySrc.IsValid() || f.ReplySrcPort != 0 {
		s += " reply-src " + addrPortText(f.ReplySrc, f.ReplySrcPort)
	}
	return s
}

// addrPortText writes an address and port where either may be unset.
func addrPortText(a netip.Addr, port uint16) string {
	switch {
	case !a.IsValid():
		return "*:" + strconv.Itoa(int(port))
	case port == 0:
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

func protocolName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// check refuses a filter without protocol or with addresses of two
// families (it could match nothing).
func (f Filter) check() error {
	if f.Protocol == 0 {
		return fmt.Errorf("conntrack filter %s: no protocol: %w", f, syscall.EINVAL)
	}
	if f.OrigDst.IsValid() && f.ReplySrc.IsValid() && f.OrigDst.Unmap().Is4() != f.ReplySrc.Unmap().Is4() {
		return fmt.Errorf("conntrack filter %s: mixed address families: %w", f, syscall.EINVAL)
	}
	return nil
}

// family says which address family the filter applies to: 4, 6, or 0 for
// both (no address set).
func (f Filter) family() int {
	for _, a := range []netip.Addr{f.OrigDst, f.ReplySrc} {
		if a.IsValid() {
			if a.Unmap().Is4() {
				return 4
			}
			return 6
		}
	}
	return 0
}

// table is the filters that apply to one family's conntrack table.
type table struct {
	family  netlink.InetFamily
	filters []Filter
}

func (t table) name() string {
	if t.family == unix.AF_INET6 {
		return "ipv6"
	}
	return "ipv4"
}

// op names the deletion from this table in errors.
func (t table) op() string {
	return fmt.Sprintf("delete conntrack entries from the %s table (%d filters)", t.name(), len(t.filters))
}

// has reports whether e is in this table.
func (t table) has(e Entry) bool {
	return e.OrigDst.Unmap().Is4() == (t.family == unix.AF_INET)
}

// matches reports whether any filter matches e.
func (t table) matches(e Entry) bool {
	return slices.ContainsFunc(t.filters, func(f Filter) bool { return f.matches(e) })
}

// tables checks the filters and groups them by the table they apply to
// (both for a filter without address), IPv4 first; tables without filters
// are left out.
func tables(filters []Filter) ([]table, error) {
	v4, v6 := table{family: unix.AF_INET}, table{family: unix.AF_INET6}
	for _, f := range filters {
		if err := f.check(); err != nil {
			return nil, err
		}
		if f.family() != 6 {
			v4.filters = append(v4.filters, f)
		}
		if f.family() != 4 {
			v6.filters = append(v6.filters, f)
		}
	}
	return slices.DeleteFunc([]table{v4, v6}, func(t table) bool { return len(t.filters) == 0 }), nil
}

// matches reports whether every set field of the filter matches e.
func (f Filter) matches(e Entry) bool {
	return f.Protocol == e.Protocol &&
		(!f.OrigDst.IsValid() || f.OrigDst.Unmap() == e.OrigDst.Unmap()) &&
		(f.OrigDstPort == 0 || f.OrigDstPort == e.OrigDstPort) &&
		(!f.ReplySrc.IsValid() || f.ReplySrc.Unmap() == e.ReplySrc.Unmap()) &&
		(f.ReplySrcPort == 0 || f.ReplySrcPort == e.ReplySrcPort)
}
