package upstreamproxier

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DummyDevice is the device both proxiers bind service addresses on.
const DummyDevice = "kube-ipvs0"

// Link is one of the node's network devices with its addresses.
type Link struct {
	Name  string
	Addrs []netip.Prefix
}

// ResetLinks makes the calling thread's namespace hold lo (up), kube-ipvs0
// with the given addresses and the given links with theirs. Links are made
// once and then only their addresses change: deleting a link costs the
// kernel tens of milliseconds. kube-ipvs0 is a dummy where the kernel has
// the driver (the test VM) and a bridge otherwise (a host without the
// dummy driver); upstream only looks it up by name, so either serves.
func ResetLinks(links []Link, bound []netip.Addr) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	var dummy []netip.Prefix
	for _, a := range bound {
		dummy = append(dummy, netip.PrefixFrom(a, a.BitLen()))
	}
	for _, l := range append([]Link{{Name: DummyDevice, Addrs: dummy}}, links...) {
		if err := ensureDevice(l.Name); err != nil {
			return err
		}
		if err := setAddresses(l); err != nil {
			return err
		}
	}
	return nil
}

func ensureDevice(name string) error {
	if _, err := netlink.LinkByName(name); err == nil {
		return nil
	}
	return addDevice(name)
}

// setAddresses makes a link's addresses (but IPv6 link-local) exactly l.Addrs.
func setAddresses(l Link) error {
	dev, err := netlink.LinkByName(l.Name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", l.Name, err)
	}
	have, err := netlink.AddrList(dev, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", l.Name, err)
	}
	want := map[netip.Prefix]bool{}
	for _, p := range l.Addrs {
		want[p] = true
	}
	for _, a := range have {
		p, ok := ipNetPrefix(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if want[p] {
			delete(want, p)
			continue
		}
		if err := netlink.AddrDel(dev, &a); err != nil {
			return fmt.Errorf("delete address %s from %s: %w", p, l.Name, err)
		}
	}
	for _, p := range l.Addrs {
		if want[p] {
			if err := addAddress(dev, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// addDevice adds a dummy device, or a bridge where dummy is not built.
func addDevice(name string) error {
	attrs := netlink.LinkAttrs{Name: name}
	err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: attrs})
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	}
	if err != nil {
		return fmt.Errorf("add link %s: %w", name, err)
	}
	return nil
}

// addAddress adds an address without duplicate address detection, so that
// IPv6 addresses are usable at once.
func addAddress(dev netlink.Link, p netip.Prefix) error {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	ipNet := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
	if err := netlink.AddrAdd(dev, &netlink.Addr{IPNet: ipNet, Flags: unix.IFA_F_NODAD}); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, dev.Attrs().Name, err)
	}
	return nil
}

// BoundAddresses lists kube-ipvs0's addresses, without IPv6 link-local ones.
func BoundAddresses() ([]netip.Addr, error) {
	l, err := netlink.LinkByName(DummyDevice)
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", DummyDevice, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", DummyDevice, err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok && !ip.Unmap().IsLinkLocalUnicast() {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	a = a.Unmap()
	if a.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), true
}
