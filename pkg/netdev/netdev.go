// Package netdev manages the dummy interface that holds the service
// addresses (kube-ipvs0) and reads the node's local addresses.
package netdev

import "net/netip"

// Interface is the part of the kernel's link and address tables we use.
type Interface interface {
	// EnsureDummy creates the dummy device if missing and sets it up.
	EnsureDummy(name string) error
	// DeleteDummy removes the device; ENOENT when it does not exist.
	DeleteDummy(name string) error
	// Addresses lists the addresses bound on the device (both families).
	Addresses(name string) ([]netip.Addr, error)
	// AddAddress binds addr as a host address (/32 or /128, no DAD).
	AddAddress(name string, addr netip.Addr) error
	DeleteAddress(name string, addr netip.Addr) error
	// LocalAddresses lists the addresses of every device except the named
	// ones (used to expand nodePortAddresses).
	LocalAddresses(exclude ...string) ([]netip.Addr, error)
}
