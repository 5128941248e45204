// Package nftables deletes nftables tables over netlink: the clean-up of
// upstream kube-proxy's nftables mode, without the nft binary (the image
// does not ship it).
package nftables

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Family is an nftables table family (NFPROTO_*).
type Family uint8

// The families kube-proxy's nftables mode creates its table in.
const (
	IPv4 Family = unix.NFPROTO_IPV4
	IPv6 Family = unix.NFPROTO_IPV6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ip"
	case IPv6:
		return "ip6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Interface changes nftables tables.
type Interface interface {
	// DeleteTable deletes a table with its chains, sets and rules; the
	// error wraps ENOENT when the table does not exist.
	DeleteTable(family Family, name string) error
}
