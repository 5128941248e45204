//go:build integration

package netdev

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

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

// LocalAddresses reports what netlink.AddrList does for every device but
// the excluded ones, a peer address's own side included. Bridges stand in
// for devices so that the test runs where dummy devices are not built.
func TestKernelLocalAddressesMatchAddrList(t *testing.T) {
	table := newKernelNamespace(t)
	peer := &netlink.Addr{IPNet: mustIPNet(t, "10.1.0.1/32"), Peer: mustIPNet(t, "10.1.0.2/32")}
	devices := map[string][]*netlink.Addr{
		"excluded0": {hostAddress(netip.MustParseAddr("10.96.0.1")), hostAddress(netip.MustParseAddr("fd00::1"))},
		"node0":     {hostAddress(netip.MustParseAddr("192.168.0.10")), hostAddress(netip.MustParseAddr("fd00:1::10")), peer},
	}
	for name, addrs := range devices {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			t.Fatalf("add bridge %s: %v", name, err)
		}
		for _, a := range addrs {
			if err := netlink.AddrAdd(br, a); err != nil {
				t.Fatalf("add %s to %s: %v", a, name, err)
			}
		}
	}
	got, err := table.LocalAddresses("excluded0")
	if err != nil {
		t.Fatal(err)
	}
	all, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	excluded, err := netlink.LinkByName("excluded0")
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for _, a := range all {
		if a.LinkIndex != excluded.Attrs().Index {
			want = append(want, toAddr(a.IP))
		}
	}
	if want = sortedUnique(want); !slices.Equal(got, want) {
		t.Errorf("LocalAddresses(excluded0) = %v, want %v", got, want)
	}
	if !slices.Contains(got, netip.MustParseAddr("10.1.0.1")) || slices.Contains(got, netip.MustParseAddr("10.1.0.2")) {
		t.Errorf("LocalAddresses gave %v: want the peer address's own side 10.1.0.1, not 10.1.0.2", got)
	}
}

func mustIPNet(t *testing.T, cidr string) *net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}
