// Package ipset manages the kernel's IP sets that the iptables rules match.
package ipset

import "net/netip"

// Type is an ipset type name.
type Type string

// The set types we use.
const (
	HashIP        Type = "hash:ip"
	HashIPPort    Type = "hash:ip,port"
	HashIPPortIP  Type = "hash:ip,port,ip"
	HashIPPortNet Type = "hash:ip,port,net"
	HashNet       Type = "hash:net"
	BitmapPort    Type = "bitmap:port"
)

// Family of a set: "inet" or "inet6" (ignored for bitmap:port).
type Family string

// Families.
const (
	Inet  Family = "inet"
	Inet6 Family = "inet6"
)

// Set is a set's header; comparable with ==.
type Set struct {
	Name    string
	Type    Type
	Family  Family
	Comment string // not compared by the proxier; informational
	// PortRange is the range of a bitmap:port set, e.g. "0-65535".
	PortRange string
}

// Entry is a member; which fields are used depends on the set type:
// hash:ip IP; hash:net Net; hash:ip,port IP+Protocol+Port;
// hash:ip,port,ip adds IP2; hash:ip,port,net adds Net; bitmap:port Port.
// Protocol is lower case: "tcp", "udp", "sctp". Comparable with ==.
type Entry struct {
	IP       netip.Addr
	Protocol string
	Port     uint16
	IP2      netip.Addr
	Net      netip.Prefix
}

// Contents is one set with its members, as read back.
type Contents struct {
	Set
	Entries []Entry
}

// Interface manages IP sets. Errors keep the errno (EEXIST, ENOENT).
type Interface interface {
	// List reads the sets whose names keep accepts, every set if keep is
	// nil, with their entries. Each set is read whole; with keep, the sets
	// are read one after the other (keep sees every name first), and one
	// destroyed in between is absent. keep may call the Interface.
	List(keep func(name string) bool) ([]Contents, error)
	CreateSet(Set) error
	DestroySet(name string) error
	AddEntry(set string, e Entry) error
	DeleteEntry(set string, e Entry) error
}
