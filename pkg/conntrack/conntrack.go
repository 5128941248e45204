// Package conntrack deletes nf_conntrack entries over netlink.
package conntrack

import "net/netip"

// Protocol numbers (IPPROTO_*).
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// Filter selects entries: all set fields must match. A zero port or an
// invalid address matches anything; Protocol is required.
type Filter struct {
	Protocol     uint8
	OrigDst      netip.Addr // service address the client connected to
	OrigDstPort  uint16
	ReplySrc     netip.Addr // the endpoint that answers (after IPVS DNAT)
	ReplySrcPort uint16
}

// Interface deletes conntrack entries of one address family or both.
type Interface interface {
	// Delete removes every entry matching any of the filters and returns
	// how many were removed.
	Delete(filters []Filter) (int, error)
}
