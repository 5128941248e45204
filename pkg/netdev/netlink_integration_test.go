//go:build integration

package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
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
	addBridges(t, devices)
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
	skipped := map[uint32]bool{uint32(excluded.Attrs().Index): true}
	for _, whole := range []bool{true, false} { // both ways LocalAddresses may read them
		if got, err := readAddressesExcept(nil, skipped, whole); err != nil || !slices.Equal(got, want) {
			t.Errorf("addresses but excluded0's, read whole=%v: %v (%v), want %v", whole, got, err, want)
		}
	}
	if !slices.Contains(got, netip.MustParseAddr("10.1.0.1")) || slices.Contains(got, netip.MustParseAddr("10.1.0.2")) {
		t.Errorf("LocalAddresses gave %v: want the peer address's own side 10.1.0.1, not 10.1.0.2", got)
	}
}

// Addresses reports what netlink.AddrList does for the device: both
// families, a peer address's own side, and nothing of another device.
func TestKernelAddressesMatchAddrList(t *testing.T) {
	table := newKernelNamespace(t)
	peer := &netlink.Addr{IPNet: mustIPNet(t, "10.1.0.1/32"), Peer: mustIPNet(t, "10.1.0.2/32")}
	devices := map[string][]*netlink.Addr{
		"kube-ipvs0": {peer},
		"node0":      {hostAddress(netip.MustParseAddr("192.168.0.10")), hostAddress(netip.MustParseAddr("fd00:1::10"))},
	}
	for i := range 300 { // more than one 32 KiB batch of the dump
		devices["kube-ipvs0"] = append(devices["kube-ipvs0"],
			hostAddress(netip.AddrFrom4([4]byte{10, 96, byte(i / 256), byte(i % 256)})),
			hostAddress(netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(i % 256), 14: byte(i / 256)})))
	}
	addBridges(t, devices)
	link, err := netlink.LinkByName("kube-ipvs0")
	if err != nil {
		t.Fatal(err)
	}
	listed, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var want []netip.Addr
	for _, a := range listed {
		want = append(want, toAddr(a.IP))
	}
	want = sortedUnique(want)
	got, err := table.Addresses("kube-ipvs0")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Addresses(kube-ipvs0) = %d addresses %v (%v), want AddrList's %d", len(got), got, err, len(want))
	}
	if !slices.Contains(got, netip.MustParseAddr("10.1.0.1")) || slices.Contains(got, netip.MustParseAddr("10.1.0.2")) ||
		slices.Contains(got, netip.MustParseAddr("192.168.0.10")) {
		t.Errorf("Addresses(kube-ipvs0) = %v: want the peer address's own side, nothing of node0", got)
	}
	if _, err := table.Addresses("missing0"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Addresses(missing0) error = %v, want ENOENT", err)
	}
}

// addBridges makes a bridge of each name holding its addresses (bridges
// stand in for devices where dummy devices are not built).
func addBridges(t *testing.T, devices map[string][]*netlink.Addr) {
	t.Helper()
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
}

func toAddr(ip net.IP) netip.Addr {
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
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

// Addresses are added by the device's remembered index; a device deleted
// and recreated behind the table's back (a new index) is looked up again,
// and a device gone is still an ENOENT.
func TestKernelAddressAfterDeviceRecreated(t *testing.T) {
	table := newKernelNamespace(t)
	if err := table.EnsureDummy("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	first, second := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.96.0.2")
	if err := table.AddAddress("kube-ipvs0", first); err != nil {
		t.Fatal(err)
	}
	deleteDevice := func() {
		t.Helper()
		link, err := netlink.LinkByName("kube-ipvs0")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkDel(link); err != nil {
			t.Fatal(err)
		}
	}
	deleteDevice()
	if err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "kube-ipvs0"}}); err != nil {
		t.Fatal(err)
	}
	if err := table.AddAddress("kube-ipvs0", second); err != nil {
		t.Fatalf("add to the recreated device: %v", err)
	}
	if got, err := table.Addresses("kube-ipvs0"); err != nil || !slices.Equal(got, []netip.Addr{second}) {
		t.Fatalf("addresses of the recreated device: %v (%v), want %v", got, err, second)
	}
	if err := table.DeleteAddress("kube-ipvs0", second); err != nil {
		t.Fatalf("delete from the recreated device: %v", err)
	}
	deleteDevice()
	if err := table.AddAddress("kube-ipvs0", first); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("add to a deleted device: %v, want ENOENT", err)
	}
}

// Binding an address does not look the device up each time: a first sync
// binds every Service IP (10k), and netlink.LinkByName decodes every
// attribute of the device (9.5 KB allocated per call).
func TestKernelAddAddressAllocatesLittle(t *testing.T) {
	table := newKernelNamespace(t)
	if err := table.EnsureDummy("kube-ipvs0"); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		if err := table.AddAddress("kube-ipvs0", netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// Before: 14.2 KB per address; now 1.6 KB (on a bridge, measured).
	if perAddress := (after.TotalAlloc - before.TotalAlloc) / n; perAddress > 4000 {
		t.Errorf("binding an address allocates %d bytes, want at most 4000", perAddress)
	}
}

// Listing the local addresses neither decodes nor keeps the excluded
// device's: kube-ipvs0 holds one per Service IP, and every partial sync
// lists them (2.1 MiB allocated at 10k Services when each batch of the
// dump had a buffer and a message slice of its own). The dump spans many
// batches, each read whole.
func TestKernelLocalAddressesSkipExcludedCheaply(t *testing.T) {
	table := newKernelNamespace(t)
	excluded := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "excluded0"}}
	if err := netlink.LinkAdd(excluded); err != nil {
		t.Fatalf("add bridge excluded0: %v", err)
	}
	const n = 3000 // about 200 KB of messages: several batches
	for i := range n {
		if err := table.AddAddress("excluded0", netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	nettest.AddAddress(t, "lo", netip.MustParsePrefix("127.0.0.1/8"))
	if _, err := table.LocalAddresses("excluded0"); err != nil { // the first call makes the buffer
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := table.LocalAddresses("excluded0")
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}; !slices.Equal(got, want) {
		t.Errorf("LocalAddresses(excluded0) = %v, want %v", got, want)
	}
	if all, err := table.LocalAddresses(); err != nil || len(all) != n+1 {
		t.Errorf("LocalAddresses() gave %d addresses (%v), want %d", len(all), err, n+1)
	}
	// Before: about 215 bytes per excluded address; now a few hundred bytes in all.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4096 {
		t.Errorf("listing the local addresses beside %d excluded ones allocated %d bytes, want at most 4096", n, allocated)
	}
}

func BenchmarkKernelLocalAddresses(b *testing.B) {
	for _, devices := range []int{3, 110} {
		for _, services := range []int{1000, 10000, 30000} {
			for _, whole := range []bool{false, true} {
				b.Run(fmt.Sprintf("devices=%d/services=%d/whole=%v", devices, services, whole), func(b *testing.B) {
					nettest.EnterNewNetns(b)
					table := New()
					for d := range devices {
						if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("dev%d", d)}}); err != nil {
							b.Fatal(err)
						}
					}
					for i := range services {
						if err := table.AddAddress("dev0", netip.AddrFrom4([4]byte{10, 96 + byte(i>>16), byte(i >> 8), byte(i)})); err != nil {
							b.Fatal(err)
						}
					}
					skipped, _ := indexesOf([]string{"dev0"})
					all, _ := table.LocalAddresses()
					b.Logf("%d addresses", len(all))
					buf := make([]byte, netlinkbatch.BufferSize)
					for b.Loop() {
						if _, err := readAddressesExcept(buf, skipped, whole); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// readAddressesExcept lists the addresses of all devices but the skipped
// ones in one dump (whole) or a dump per device, read into buf.
func readAddressesExcept(buf []byte, skipped map[uint32]bool, whole bool) ([]netip.Addr, error) {
	s, err := openRouteSocket(buf)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if whole {
		addrs, _, err := s.allAddressesExcept(skipped)
		return sortedUnique(addrs), err
	}
	indexes, err := s.linkIndexes(skipped)
	if err != nil {
		return nil, err
	}
	addrs, err := s.addressesByDevice(indexes)
	return sortedUnique(addrs), err
}

// addBridge adds a bridge (standing in for a device not built everywhere)
// holding addrs.
func addBridge(t *testing.T, table Interface, name string, addrs ...netip.Addr) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		t.Fatalf("add bridge %s: %v", name, err)
	}
	for _, a := range addrs {
		if err := table.AddAddress(name, a); err != nil {
			t.Fatal(err)
		}
	}
}

// serviceAddresses are n addresses from 10.96.0.0.
func serviceAddresses(n int) []netip.Addr {
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})
	}
	return addrs
}

// Two goroutines listing the addresses at once through one table, in the
// dump of all and then device by device (run with -race).
func TestKernelLocalAddressesConcurrently(t *testing.T) {
	ns := nettest.EnterNewNetns(t)
	table := New()
	addBridge(t, table, "excluded0", serviceAddresses(500)...)
	node := netip.MustParseAddr("192.168.0.10")
	addBridge(t, table, "node0", node)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			runtime.LockOSThread() // never unlocked: Go discards the thread, moved into ns, with the goroutine
			if err := netns.Set(ns); err != nil {
				errs <- err
				return
			}
			for range 20 {
				if got, err := table.LocalAddresses("excluded0"); err != nil || !slices.Equal(got, []netip.Addr{node}) {
					errs <- fmt.Errorf("LocalAddresses(excluded0) = %v (%v), want %v", got, err, node)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// After the excluded device's many addresses made the reads go device by
// device, it is deleted and made again (a new index) with few: what is
// listed follows, and a device gone between the list of devices and the
// dump of its addresses has none.
func TestKernelLocalAddressesAfterExcludedDeviceRecreated(t *testing.T) {
	table := newKernelNamespace(t)
	addBridge(t, table, "excluded0", serviceAddresses(500)...)
	node := netip.MustParseAddr("192.168.0.10")
	addBridge(t, table, "node0", node)
	for range 2 { // the first learns how many the excluded device holds
		if got, err := table.LocalAddresses("excluded0"); err != nil || !slices.Equal(got, []netip.Addr{node}) {
			t.Fatalf("LocalAddresses(excluded0) = %v (%v), want %v", got, err, node)
		}
	}
	link, err := netlink.LinkByName("excluded0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkDel(link); err != nil {
		t.Fatal(err)
	}
	s, err := openRouteSocket(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if got, err := s.addressesOf(uint32(link.Attrs().Index), nil); err != nil || len(got) != 0 {
		t.Errorf("addresses of a deleted device: %v (%v), want none", got, err)
	}
	service := netip.MustParseAddr("10.96.0.1")
	addBridge(t, table, "excluded0", service)
	if got, err := table.LocalAddresses("excluded0"); err != nil || !slices.Equal(got, []netip.Addr{node}) {
		t.Errorf("LocalAddresses(excluded0) after it was made again = %v (%v), want %v", got, err, node)
	}
	if got, err := table.LocalAddresses(); err != nil || !slices.Equal(got, []netip.Addr{service, node}) {
		t.Errorf("LocalAddresses() = %v (%v), want %v %v", got, err, service, node)
	}
}
