//go:build integration

package ipvs

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

func newKernelTable(t *testing.T) Interface {
	t.Helper()
	nettest.EnterNewNetns(t)
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

func TestKernelDestinationsOfOneService(t *testing.T) {
	table := newKernelTable(t)
	key := ServiceKey{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}
	if got, err := table.Destinations(key); err != nil || len(got) != 0 {
		t.Fatalf("Destinations of a missing service: %v, %v; want none", got, err)
	}
	if err := table.AddService(Service{ServiceKey: key, Scheduler: "rr", Netmask: 0xffffffff}); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"10.1.0.2", "10.1.0.1"} {
		d := Destination{DestinationKey: DestinationKey{Address: netip.MustParseAddr(ip), Port: 8080}, Weight: 1}
		if err := table.AddDestination(key, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := table.Destinations(key)
	if err != nil || len(got) != 2 || got[0].Address.String() != "10.1.0.1" || got[1].Weight != 1 {
		t.Fatalf("Destinations = %v, %v; want both, sorted, weight 1", got, err)
	}
}
