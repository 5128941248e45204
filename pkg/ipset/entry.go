package ipset

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink/nl"
)

// protocolNumber maps a protocol name to its number (IPPROTO_*).
func protocolNumber(name string) (uint8, bool) {
	switch name {
	case "tcp":
		return 6, true
	case "udp":
		return 17, true
	case "sctp":
		return 132, true
	}
	return 0, false
}

// protocolName maps a protocol number to its name; unknown numbers are
// written as digits (the kernel never stores them for our sets).
func protocolName(num uint8) string {
	for _, name := range []string{"tcp", "udp", "sctp"} {
		if n, _ := protocolNumber(name); n == num {
			return name
		}
	}
	return strconv.Itoa(int(num))
}

// String writes the entry in ipset syntax: "10.0.0.1", "10.0.0.0/8",
// "10.0.0.1,tcp:80", "10.0.0.1,tcp:80,10.0.0.2", "10.0.0.1,tcp:80,10.0.0.0/8"
// or a bare port number for bitmap:port.
func (e Entry) String() string {
	var parts []string
	switch {
	case e.IP.IsValid():
		parts = append(parts, e.IP.String())
	case e.Net.IsValid():
		return e.Net.String()
	default:
		return strconv.Itoa(int(e.Port))
	}
	if e.Protocol != "" || e.Port != 0 {
		parts = append(parts, e.Protocol+":"+strconv.Itoa(int(e.Port)))
	}
	if e.IP2.IsValid() {
		parts = append(parts, e.IP2.String())
	}
	if e.Net.IsValid() {
		parts = append(parts, e.Net.String())
	}
	return strings.Join(parts, ",")
}

// ipsetError is a kernel ipset error: the IPSET_ERR_* code together with the
// errno it means for the operation, so that errors.Is works with both.
type ipsetError struct {
	code  nl.IPSetError
	errno syscall.Errno
}

func (e ipsetError) Error() string {
	switch e.code {
	case errBitmapRange:
		return fmt.Sprintf("%v: out of range (or set full)", e.errno)
	case errInvalidProto:
		return fmt.Sprintf("%v: invalid protocol", e.errno)
	case errMissingProto:
		return fmt.Sprintf("%v: missing protocol", e.errno)
	}
	return fmt.Sprintf("%v: %v", e.errno, e.code)
}

func (e ipsetError) Unwrap() []error { return []error{e.code, e.errno} }

// errInvalid is how the kernel refuses a malformed request (a missing or
// extra attribute, a wrong address family, a bad CIDR).
var errInvalid = ipsetError{code: nl.IPSET_ERR_PROTOCOL, errno: syscall.EINVAL}

// Kernel type-specific codes we emulate (IPSET_ERR_TYPE_SPECIFIC + n).
const (
	errBitmapRange  = nl.IPSET_ERR_TYPE_SPECIFIC     // bitmap: port out of range (hash: set full)
	errInvalidProto = nl.IPSET_ERR_TYPE_SPECIFIC + 2 // hash: protocol the type does not know
	errMissingProto = nl.IPSET_ERR_TYPE_SPECIFIC + 3 // hash: port without protocol
)

// validateSet checks a set header the way the kernel (and our encoding)
// would, and returns it normalised as List reads it back.
func validateSet(s Set) (Set, error) {
	if s.Name == "" || len(s.Name) > 31 {
		return s, errInvalid
	}
	s.Comment = "" // netlink cannot carry a set comment
	switch s.Type {
	case BitmapPort:
		from, to, err := parsePortRange(s.PortRange)
		if err != nil {
			return s, err
		}
		s.Family = ""
		s.PortRange = fmt.Sprintf("%d-%d", from, to)
		return s, nil
	case HashIP, HashIPPort, HashIPPortIP, HashIPPortNet, HashNet:
		if s.PortRange != "" || (s.Family != Inet && s.Family != Inet6) {
			return s, ipsetError{code: nl.IPSET_ERR_INVALID_FAMILY, errno: syscall.EINVAL}
		}
		return s, nil
	}
	return s, ipsetError{code: nl.IPSET_ERR_FIND_TYPE, errno: syscall.EINVAL}
}

// parsePortRange reads "from-to"; like the kernel, a reversed range is
// swapped.
func parsePortRange(r string) (uint16, uint16, error) {
	fromText, toText, ok := strings.Cut(r, "-")
	from, errFrom := strconv.ParseUint(fromText, 10, 16)
	to, errTo := strconv.ParseUint(toText, 10, 16)
	if !ok || errFrom != nil || errTo != nil {
		return 0, 0, errInvalid
	}
	if from > to {
		from, to = to, from
	}
	return uint16(from), uint16(to), nil
}

// entryShape says which fields a set type uses.
type entryShape struct {
	ip, proto, ip2, net bool
}

// shapeOf returns the fields entries of type t carry.
func shapeOf(t Type) entryShape {
	switch t {
	case HashIP:
		return entryShape{ip: true}
	case HashIPPort:
		return entryShape{ip: true, proto: true}
	case HashIPPortIP:
		return entryShape{ip: true, proto: true, ip2: true}
	case HashIPPortNet:
		return entryShape{ip: true, proto: true, net: true}
	case HashNet:
		return entryShape{net: true}
	}
	return entryShape{} // bitmap:port: the port alone
}

// validateEntry checks e against the set's type and family like the kernel
// does, and returns it as the kernel stores it (networks masked).
func validateEntry(s Set, e Entry) (Entry, error) {
	shape := shapeOf(s.Type)
	e.IP, e.IP2 = e.IP.Unmap(), e.IP2.Unmap()
	if e.Net.IsValid() {
		e.Net = netip.PrefixFrom(e.Net.Addr().Unmap(), e.Net.Bits()).Masked()
	}
	if e.IP.IsValid() != shape.ip || e.IP2.IsValid() != shape.ip2 || e.Net.IsValid() != shape.net {
		return e, errInvalid
	}
	if !inFamily(s.Family, e.IP) || !inFamily(s.Family, e.IP2) || !inFamily(s.Family, e.Net.Addr()) {
		return e, errInvalid
	}
	if shape.net && e.Net.Bits() == 0 {
		return e, ipsetError{code: nl.IPSET_ERR_INVALID_CIDR, errno: syscall.EINVAL}
	}
	return e, validatePort(s, shape, e)
}

// inFamily reports whether a (possibly absent) address fits the family.
func inFamily(f Family, a netip.Addr) bool {
	return !a.IsValid() || (f == Inet) == a.Is4()
}

// validatePort checks the protocol and port fields.
func validatePort(s Set, shape entryShape, e Entry) error {
	if s.Type == BitmapPort {
		from, to, _ := parsePortRange(s.PortRange)
		if e.Protocol != "" {
			return errInvalid
		}
		if e.Port < from || e.Port > to {
			return ipsetError{code: errBitmapRange, errno: syscall.EINVAL}
		}
		return nil
	}
	if !shape.proto {
		if e.Protocol != "" || e.Port != 0 {
			return errInvalid
		}
		return nil
	}
	if e.Protocol == "" {
		return ipsetError{code: errMissingProto, errno: syscall.EINVAL}
	}
	if _, ok := protocolNumber(e.Protocol); !ok {
		return ipsetError{code: errInvalidProto, errno: syscall.EINVAL}
	}
	return nil
}
