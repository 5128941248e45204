//go:build integration

package netdev

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

func newKernelNamespace(t *testing.T) Interface {
	t.Helper()
	nettest.EnterNewNetns(t)
	return New()
}

func TestKernelConformance(t *testing.T) {
	runConformance(t, newKernelNamespace)
}

// The kernel's own errno for deleting an unbound address is kept.
func TestKernelMissingAddressErrno(t *testing.T) {
	table := newKernelNamespace(t)
	if err := table.EnsureDummy(dummyName); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"10.96.0.1", "fd00::1"} {
		err := table.DeleteAddress(dummyName, netip.MustParseAddr(addr))
		if !errors.Is(err, syscall.EADDRNOTAVAIL) || !errors.Is(err, syscall.ENOENT) {
			t.Errorf("DeleteAddress(%s): %v, want EADDRNOTAVAIL matching ENOENT", addr, err)
		}
	}
}
