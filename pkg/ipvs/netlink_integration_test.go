//go:build integration

package ipvs

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// enterNewNetns moves the calling goroutine, locked to its thread, into a
// fresh network namespace until the test ends. A table opened there stays
// there: its netlink socket belongs to the namespace it was created in.
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

func newKernelTable(t *testing.T) Interface {
	t.Helper()
	enterNewNetns(t)
	// Like any node: without lo up a fresh namespace has no local routing
	// table, and the kernel rejects every IPv4 real server with EINVAL.
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("set lo up: %v", err)
	}
	table, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return table
}

func TestKernelConformance(t *testing.T) {
	runConformance(t, newKernelTable)
}

func TestKernelTimeouts(t *testing.T) {
	runTimeoutsConformance(t, newKernelTable(t))
}

// The kernel sets FlagHashed on every service; List keeps it.
func TestKernelKeepsHashedFlag(t *testing.T) {
	table := newKernelTable(t)
	key := svcKey(netip.MustParseAddr("10.0.0.1"), TCP, 80)
	if err := table.AddService(rrService(key)); err != nil {
		t.Fatal(err)
	}
	vss, err := table.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(vss) != 1 || vss[0].Flags != FlagHashed || vss[0].ServiceKey != key {
		t.Errorf("List = %+v, want %v with flags %#x", vss, key, FlagHashed)
	}
}
