//go:build integration

package netdev

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// A device's index names it only while it exists: once kube-ipvs0 is
// deleted, its old index may be taken by another device (a device moved
// into the namespace keeps its index when it is free, and one can be
// created with a chosen index). Addresses are still added to and deleted
// from kube-ipvs0, never from the device that took its old index. Bridges
// stand in for the dummy device (not built everywhere).
func TestKernelAddressNotWrittenToTheDeviceThatTookTheIndex(t *testing.T) {
	table := newKernelNamespace(t)
	addBridge := func(name string, index int) netlink.Link {
		t.Helper()
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, Index: index}}
		if err := netlink.LinkAdd(br); err != nil {
			t.Fatalf("add bridge %s (index %d): %v", name, index, err)
		}
		link, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return link
	}
	addrsOf := func(name string) []netip.Addr {
		t.Helper()
		got, err := table.Addresses(name)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(got, netip.Addr.IsLinkLocalUnicast)
	}
	first, second, theirs := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.2"), netip.MustParseAddr("10.96.0.3")
	old := addBridge("kube-ipvs0", 0)
	if err := table.AddAddress("kube-ipvs0", first); err != nil { // remembers the index
		t.Fatal(err)
	}
	if err := table.AddAddress("kube-ipvs0", theirs); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(old); err != nil {
		t.Fatal(err)
	}
	other := addBridge("other0", old.Attrs().Index)
	if err := netlink.AddrAdd(other, hostAddress(theirs)); err != nil {
		t.Fatal(err)
	}
	addBridge("kube-ipvs0", 0)
	if err := table.AddAddress("kube-ipvs0", second); err != nil {
		t.Errorf("add to the recreated device: %v", err)
	}
	// theirs is not on kube-ipvs0 any more: deleting it there finds nothing.
	if err := table.DeleteAddress("kube-ipvs0", theirs); err == nil {
		t.Errorf("deleting %s from the recreated kube-ipvs0 (which lacks it) succeeded", theirs)
	}
	if got := addrsOf("other0"); !slices.Equal(got, []netip.Addr{theirs}) {
		t.Errorf("the device that took kube-ipvs0's old index holds %v, want only its own %v", got, theirs)
	}
	if got := addrsOf("kube-ipvs0"); !slices.Equal(got, []netip.Addr{second}) {
		t.Errorf("kube-ipvs0 holds %v, want %v", got, second)
	}
}
