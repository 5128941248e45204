package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

// String gives "TCP 10.0.0.1:80" or "UDP [fd00::1]:53".
func (k ServiceKey) String() string {
	return fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Address, k.Port))
}

// String gives "10.1.0.1:8080" or "[fd00::1]:8080".
func (k DestinationKey) String() string {
	return netip.AddrPortFrom(k.Address, k.Port).String()
}

// destinationName names a real server within its virtual server, for
// errors, logs and Fake.Inject.
func destinationName(svc ServiceKey, dst DestinationKey) string {
	return fmt.Sprintf("%s -> %s", svc, dst)
}

// missingServiceError is what the kernel's ESRCH means on an IPVS command:
// the named virtual server does not exist. It unwraps to ESRCH (the errno
// the kernel gave) and also matches ENOENT, the errno callers test for a
// missing object.
type missingServiceError struct{}

func (missingServiceError) Error() string { return "no such virtual server (ESRCH)" }

func (missingServiceError) Unwrap() error { return syscall.ESRCH }

func (missingServiceError) Is(target error) bool { return target == syscall.ENOENT }

// kernelError translates the kernel's ESRCH into missingServiceError and
// passes every other error through.
func kernelError(err error) error {
	if err == syscall.ESRCH {
		return missingServiceError{}
	}
	return err
}

// compareServiceKeys orders by address, protocol, port.
func compareServiceKeys(a, b ServiceKey) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

func compareDestinationKeys(a, b DestinationKey) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

// sortVirtualServers sorts services and their destinations in place.
func sortVirtualServers(vss []VirtualServer) {
	slices.SortFunc(vss, func(a, b VirtualServer) int {
		return compareServiceKeys(a.ServiceKey, b.ServiceKey)
	})
	for _, vs := range vss {
		sortDestinations(vs.Destinations)
	}
}

func sortDestinations(ds []Destination) {
	slices.SortFunc(ds, func(a, b Destination) int {
		return compareDestinationKeys(a.DestinationKey, b.DestinationKey)
	})
}

// FormatVirtualServers renders virtual servers the way Fake.Dump does, one
// line per service and an indented line per real server, sorted. Tests use
// it to compare what List returns from the kernel with a Fake's Dump.
func FormatVirtualServers(vss []VirtualServer) string {
	sorted := slices.Clone(vss)
	for i := range sorted {
		sorted[i].Destinations = slices.Clone(sorted[i].Destinations)
	}
	sortVirtualServers(sorted)
	var b strings.Builder
	for _, vs := range sorted {
		b.WriteString(formatService(vs.Service))
		b.WriteByte('\n')
		for _, d := range vs.Destinations {
			fmt.Fprintf(&b, "  -> %s weight=%d active=%d inactive=%d\n",
				d.DestinationKey, d.Weight, d.ActiveConn, d.InactiveConn)
		}
	}
	return b.String()
}

// formatService gives "TCP 10.0.0.1:80 rr flags=0x2 timeout=0"; the
// persistence netmask is added only for persistent services, where it
// matters.
func formatService(s Service) string {
	line := fmt.Sprintf("%s %s flags=%#x timeout=%d", s.ServiceKey, s.Scheduler, s.Flags, s.Timeout)
	if s.Flags&FlagPersistent == 0 {
		return line
	}
	if s.Address.Is6() {
		return fmt.Sprintf("%s netmask=%d", line, s.Netmask)
	}
	return fmt.Sprintf("%s netmask=%#x", line, s.Netmask)
}
