//go:build integration

package ipvs

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
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

// fillVariedTable programs enough virtual servers that /proc/net/ip_vs
// takes many reads (the kernel hands out about a page per read): both
// families, three protocols, persistence, one-packet scheduling, real
// servers at weight 0, one virtual server without real servers.
func fillVariedTable(t *testing.T, table Interface) {
	t.Helper()
	add := func(s Service, dsts ...Destination) {
		t.Helper()
		if err := table.AddService(s); err != nil {
			t.Fatal(err)
		}
		for _, d := range dsts {
			if err := table.AddDestination(s.ServiceKey, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	protocols := []Protocol{TCP, UDP, SCTP}
	for i := range 300 {
		for _, vip := range vipPair(i) {
			s := rrService(svcKey(vip, protocols[i%3], uint16(80+i)))
			if i%7 == 0 {
				s.Flags, s.Timeout = FlagPersistent, 10800
			}
			var dsts []Destination
			for j := range i % 11 {
				ep := netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 1)})
				if vip.Is6() {
					ep = netip.AddrFrom16([16]byte{0xfd, 0x44, 14: byte(i), 15: byte(j + 1)})
				}
				dsts = append(dsts, Destination{DestinationKey: DestinationKey{Address: ep, Port: uint16(8080 + j)}, Weight: j % 2})
			}
			add(s, dsts...)
		}
	}
}

// The real servers read from /proc/net/ip_vs in one pass are those each
// virtual server's own netlink dump gives, and List gives the same with the
// table unreadable (every virtual server dumped) or missing some virtual
// servers (those dumped alone).
func TestKernelTableReadMatchesNetlinkDumps(t *testing.T) {
	table := newKernelTable(t)
	fillVariedTable(t, table)
	k := table.(*kernel)
	fromTable, err := k.readTable()
	if err != nil {
		t.Fatalf("read /proc/net/ip_vs: %v", err)
	}
	services, err := k.handle.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	if len(fromTable) != len(services) || len(services) != 600 {
		t.Fatalf("/proc/net/ip_vs has %d virtual servers, netlink %d; want 600 in both", len(fromTable), len(services))
	}
	for _, ms := range services {
		svc, _ := fromMobyService(ms)
		dumped, err := k.destinations(ms)
		if err != nil {
			t.Fatal(err)
		}
		read, ok := fromTable[svc.ServiceKey]
		one := func(d []Destination) string {
			return FormatVirtualServers([]VirtualServer{{Service: svc, Destinations: d}})
		}
		if !ok || one(read) != one(dumped) {
			t.Errorf("%s: /proc/net/ip_vs gives %v (present %v), netlink %v", svc.ServiceKey, read, ok, dumped)
		}
	}

	want, err := table.List()
	if err != nil {
		t.Fatal(err)
	}
	k.table, k.tableErr = nil, errors.New("forced")
	assertListEqual(t, "table unreadable", table, want)

	partial := filepath.Join(t.TempDir(), "ip_vs")
	text := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  0A600000:0050 rr \n"
	if err := os.WriteFile(partial, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if k.table, err = os.Open(partial); err != nil {
		t.Fatal(err)
	}
	k.tableErr = nil
	defer k.table.Close()
	assertListEqual(t, "table missing all but one virtual server", table, want)
}

func assertListEqual(t *testing.T, name string, table Interface, want []VirtualServer) {
	t.Helper()
	got, err := table.List()
	if err != nil {
		t.Fatalf("%s: List: %v", name, err)
	}
	if g, w := FormatVirtualServers(got), FormatVirtualServers(want); g != w {
		t.Errorf("%s: List =\n%s\nwant\n%s", name, g, w)
	}
}

// vipPair is the i-th IPv4 and IPv6 virtual address of the filled tables
// (10.96.x.y and fd00::x:y, i < 65536).
func vipPair(i int) []netip.Addr {
	return []netip.Addr{
		netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
		netip.AddrFrom16([16]byte{0xfd, 0, 14: byte(i >> 8), 15: byte(i)}),
	}
}
