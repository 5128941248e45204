//go:build integration

package ipvs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
)

// familyLines is List (both) or ListFamily rendered one line per virtual
// server (every field) or real server, sorted (two virtual servers of one
// key, see below, compare whatever order sorting left them in).
func familyLines(t *testing.T, table Interface, pick families) []string {
	t.Helper()
	var lines []string
	for _, vs := range familyList(t, table, pick) {
		lines = append(lines, fmt.Sprintf("%+v", vs.Service))
		for _, d := range vs.Destinations {
			lines = append(lines, fmt.Sprintf("%v -> %+v", vs.ServiceKey, d))
		}
	}
	slices.Sort(lines)
	return lines
}

func familyList(t *testing.T, table Interface, pick families) []VirtualServer {
	t.Helper()
	var vss []VirtualServer
	var err error
	if pick == bothFamilies {
		vss, err = table.List()
	} else {
		vss, err = table.ListFamily(pick == onlyIPv6)
	}
	if err != nil {
		t.Fatalf("list %s: %v", familyNames[pick], err)
	}
	return vss
}

var familyNames = map[families]string{bothFamilies: "List", onlyIPv4: "ListFamily(false)", onlyIPv6: "ListFamily(true)"}

// newFlushedKernelTable is newKernelTable, flushed at the end: virtual
// servers left in a namespace that a handle keeps would skew the text read
// of later tests (see TestKernelTableReadBesideAnotherNamespace).
func newFlushedKernelTable(t *testing.T) Interface {
	table := newKernelTable(t)
	t.Cleanup(func() {
		if err := table.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
	})
	return table
}

// overMoby is f with the virtual servers listed by moby's GetServices, as
// when the own socket cannot be opened.
func overMoby(table Interface, f func()) {
	k := table.(*kernel)
	dump := k.dump
	k.dump = nil
	defer func() { k.dump = dump }()
	f()
}

// fillDumpTable adds 250 virtual servers of each family: every protocol
// we program, schedulers with their flags, persistence with a netmask,
// real servers; firewall-mark services of both families with a real
// server; an IPv6 virtual server at an IPv4-mapped address beside the
// IPv4 one at that address, and one alone.
func fillDumpTable(t *testing.T, table Interface) {
	t.Helper()
	protocols := []Protocol{TCP, UDP, SCTP}
	for i := range 250 {
		for _, vip := range vipPair(i) {
			s := rrService(svcKey(vip, protocols[i%3], uint16(80+i)))
			switch i % 5 {
			case 1:
				s.Scheduler = "wrr"
			case 2:
				s.Scheduler, s.Flags = "sh", FlagSchedFlag1|FlagSchedFlag2
			case 3:
				s.Flags, s.Timeout, s.Netmask = FlagPersistent, 10800, 0xffffff00
				if vip.Is6() {
					s.Netmask = 64
				}
			}
			if err := table.AddService(s); err != nil {
				t.Fatal(err)
			}
			for j := range i % 4 {
				ep := netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 1)})
				if vip.Is6() {
					ep = netip.AddrFrom16([16]byte{0xfd, 0x44, 14: byte(i), 15: byte(j + 1)})
				}
				if err := table.AddDestination(s.ServiceKey, dst(ep, uint16(8080+j), j%2)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	k := table.(*kernel)
	for _, fwm := range []*mobyipvs.Service{
		{FWMark: 7, AddressFamily: syscall.AF_INET, SchedName: "rr", Netmask: 0xffffffff},
		{FWMark: 8, AddressFamily: syscall.AF_INET6, SchedName: "rr", Netmask: 128},
	} {
		if err := k.handle.NewService(fwm); err != nil {
			t.Fatalf("firewall-mark service %d: %v", fwm.FWMark, err)
		}
		ip, family := net.ParseIP("10.244.0.9").To4(), uint16(syscall.AF_INET)
		if fwm.AddressFamily == syscall.AF_INET6 {
			ip, family = net.ParseIP("fd00::244:9"), syscall.AF_INET6
		}
		if err := k.handle.NewDestination(fwm, &mobyipvs.Destination{Address: ip, Port: 80, Weight: 1, AddressFamily: family}); err != nil {
			t.Fatalf("real server of firewall-mark service %d: %v", fwm.FWMark, err)
		}
	}
	// 10.96.0.0:80 is the IPv4 TCP one of i = 0.
	run(t, "ipvsadm", "-A", "-t", "[::ffff:10.96.0.0]:80", "-s", "rr")
	run(t, "ipvsadm", "-a", "-t", "[::ffff:10.96.0.0]:80", "-r", "[fd00::2]:8080", "-m", "-w", "3")
	run(t, "ipvsadm", "-A", "-u", "[::ffff:10.96.9.9]:53", "-s", "wrr", "-p", "60")
	run(t, "ipvsadm", "-a", "-u", "[::ffff:10.96.9.9]:53", "-r", "[fd00::244:9]:53", "-m", "-w", "2")
}

// List and ListFamily give, from the own dump, what they gave from moby's
// GetServices.
func TestKernelServiceDumpMatchesMoby(t *testing.T) {
	table := newFlushedKernelTable(t)
	if table.(*kernel).dump == nil {
		t.Fatal("the service dump socket was not opened")
	}
	fillDumpTable(t, table)
	for pick, name := range familyNames {
		got := familyLines(t, table, pick)
		var want []string
		overMoby(table, func() { want = familyLines(t, table, pick) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d lines, moby's %d:\n%s", name, len(got), len(want), lineDiff(got, want))
		}
		t.Logf("%s: %d lines", name, len(got))
	}
	mapped := svcKey(netip.MustParseAddr("10.96.9.9"), UDP, 53)
	i := slices.IndexFunc(familyList(t, table, onlyIPv4), func(vs VirtualServer) bool { return vs.ServiceKey == mapped })
	if i < 0 {
		t.Errorf("ListFamily(false) lacks %v, the IPv6 virtual server at an IPv4-mapped address", mapped)
	}
	logDumpTimes(t, table)
}

// lineDiff is the lines only one side has.
func lineDiff(got, want []string) string {
	var b strings.Builder
	for _, l := range got {
		if !slices.Contains(want, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	return b.String()
}

// logDumpTimes logs what the virtual servers' read costs each way (the
// real servers' read is the same).
func logDumpTimes(t *testing.T, table Interface) {
	k := table.(*kernel)
	const rounds = 20
	for _, pick := range []families{onlyIPv4, onlyIPv6} {
		start := time.Now()
		for range rounds {
			if _, err := k.dump.services(pick); err != nil {
				t.Fatal(err)
			}
		}
		ours := time.Since(start) / rounds
		start = time.Now()
		for range rounds {
			if _, err := k.mobyServices(pick); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s's virtual servers of 504: own dump %v, moby's GetServices %v", familyNames[pick], ours, time.Since(start)/rounds)
	}
}

// The IPv6 read of a table without IPv6 virtual servers gives none (and
// reads no real server); the IPv4 read gives them all.
func TestKernelServiceDumpIPv6OfIPv4Table(t *testing.T) {
	table := newFlushedKernelTable(t)
	for i := range 100 {
		key := svcKey(netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}), TCP, 80)
		if err := table.AddService(rrService(key)); err != nil {
			t.Fatal(err)
		}
		if err := table.AddDestination(key, dst(netip.AddrFrom4([4]byte{10, 244, 0, byte(i)}), 8080, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if vss, err := table.ListFamily(true); err != nil || len(vss) != 0 {
		t.Errorf("ListFamily(true) = %d virtual servers, %v; want none", len(vss), err)
	}
	if vss, err := table.ListFamily(false); err != nil || len(vss) != 100 || len(vss[0].Destinations) != 1 {
		t.Errorf("ListFamily(false) = %d virtual servers, %v; want 100 with a real server each", len(vss), err)
	}
}
