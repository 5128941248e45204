package guest

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// links is a netlink handle bound to one namespace.
type links struct {
	h *netlink.Handle
}

func linksIn(ns netns.NsHandle) (*links, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink in netns %s: %w", ns, err)
	}
	return &links{h: h}, nil
}

func (l *links) close() { l.h.Close() }

func (l *links) up(name string) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := l.h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set link %s up: %w", name, err)
	}
	return nil
}

func (l *links) addAddr(name string, p netip.Prefix) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := l.h.AddrAdd(link, &netlink.Addr{IPNet: ipn}); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, name, err)
	}
	return nil
}

func (l *links) defaultRoute(dev string, gw netip.Addr) error {
	link, err := l.h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find link %s: %w", dev, err)
	}
	if err := l.h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("add default route via %s on %s: %w", gw, dev, err)
	}
	return nil
}

func (l *links) addBridge(name string, gw netip.Prefix) error {
	if err := l.h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
		return fmt.Errorf("add bridge %s: %w", name, err)
	}
	if err := l.addAddr(name, gw); err != nil {
		return err
	}
	return l.up(name)
}

// exists tells whether a link is present.
func (l *links) exists(name string) bool {
	_, err := l.h.LinkByName(name)
	return err == nil
}

func (l *links) del(name string) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := l.h.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// addrs lists the addresses of a link.
func (l *links) addrs(name string) ([]netip.Addr, error) {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", name, err)
	}
	list, err := l.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func (l *links) delAddr(name string, p netip.Prefix) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	if err := l.h.AddrDel(link, &netlink.Addr{IPNet: ipn}); err != nil {
		return fmt.Errorf("delete address %s from %s: %w", p, name, err)
	}
	return nil
}

// vethInto creates a veth pair whose end peer moves into ns under the name inner; the
// end named outer stays in l's namespace.
func (l *links) vethInto(outer, inner string, ns netns.NsHandle) error {
	tmp := outer + "p"
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: outer}, PeerName: tmp, PeerNamespace: netlink.NsFd(ns)}
	if err := l.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", outer, err)
	}
	in, err := linksIn(ns)
	if err != nil {
		return err
	}
	defer in.close()
	link, err := in.h.LinkByName(tmp)
	if err != nil {
		return fmt.Errorf("find veth peer %s: %w", tmp, err)
	}
	if err := in.h.LinkSetName(link, inner); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, inner, err)
	}
	return nil
}

func (l *links) setMaster(name, bridge string) error {
	link, err := l.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	br, err := l.h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	if err := l.h.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, bridge, err)
	}
	return nil
}
