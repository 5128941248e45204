package netdev

import (
	"fmt"
	"net/netip"
	"slices"
	"syscall"
)

// missingAddressError is what the kernel's EADDRNOTAVAIL means when
// deleting an address: it is not bound on the device. It unwraps to
// EADDRNOTAVAIL and also matches ENOENT, the errno callers test for a
// missing object.
type missingAddressError struct{}

func (missingAddressError) Error() string { return "address not bound (EADDRNOTAVAIL)" }

func (missingAddressError) Unwrap() error { return syscall.EADDRNOTAVAIL }

func (missingAddressError) Is(target error) bool { return target == syscall.ENOENT }

// addressName names an address on a device, for errors and Fake.Inject.
func addressName(addr netip.Addr, device string) string {
	return fmt.Sprintf("%s on %s", addr, device)
}

// checkAddress rejects addresses the kernel would misread (a zone, an
// IPv4-mapped IPv6 address) or cannot take.
func checkAddress(addr netip.Addr) error {
	if !addr.IsValid() || addr.Is4In6() || addr.Zone() != "" {
		return fmt.Errorf("address %q must be plain IPv4 or IPv6: %w", addr, syscall.EINVAL)
	}
	return nil
}

func sortedUnique(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}
