package ipvs

import (
	"fmt"
	"syscall"
	"time"
)

// These checks run before any kernel call, in the netlink implementation
// and in the Fake alike, for inputs the kernel would misread rather than
// reject (moby/ipvs sends no real-server address family, so the kernel
// takes the service's).

func checkAddressKey(what string, k ServiceKey) error {
	if !k.Address.IsValid() || k.Address.Is4In6() || k.Address.Zone() != "" {
		return fmt.Errorf("%s address %q must be plain IPv4 or IPv6: %w", what, k.Address, syscall.EINVAL)
	}
	switch k.Protocol {
	case TCP, UDP, SCTP:
		return nil
	}
	return fmt.Errorf("protocol %q: %w", k.Protocol, syscall.EPROTONOSUPPORT)
}

func checkServiceKey(k ServiceKey) error {
	return checkAddressKey("virtual server", k)
}

func checkDestinationKey(svc ServiceKey, dst DestinationKey) error {
	if err := checkServiceKey(svc); err != nil {
		return err
	}
	// Reuse the address checks; the protocol is the service's.
	if err := checkAddressKey("real server", ServiceKey{Address: dst.Address, Protocol: svc.Protocol}); err != nil {
		return err
	}
	if dst.Address.Is4() != svc.Address.Is4() {
		return fmt.Errorf("real server %s is not of the virtual server's address family: %w", dst, syscall.EINVAL)
	}
	return nil
}

func checkTimeouts(t Timeouts) error {
	for _, d := range []time.Duration{t.TCP, t.TCPFin, t.UDP} {
		// The kernel takes whole seconds; zero means "leave as is".
		if d < 0 || (d > 0 && d < time.Second) {
			return fmt.Errorf("timeout %v must be zero or at least 1s: %w", d, syscall.EINVAL)
		}
	}
	return nil
}
