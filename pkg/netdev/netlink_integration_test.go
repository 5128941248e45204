//go:build integration

package netdev

import (
	"errors"
	"net/netip"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// enterNewNetns moves the calling goroutine, locked to its thread, into a
// fresh network namespace until the test ends. The kernel implementation
// works in the calling thread's namespace, so every subtest enters its own.
func enterNewNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the goroutine ends.
			t.Errorf("restore netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
}

func newKernelNamespace(t *testing.T) Interface {
	t.Helper()
	enterNewNetns(t)
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
