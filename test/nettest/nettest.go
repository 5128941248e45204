// Package nettest builds throwaway network namespaces for real-kernel tests:
// a node namespace the test runs in, and pod namespaces wired to it.
package nettest

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EnterNewNetns moves the calling goroutine, locked to its thread, into a
// fresh network namespace (lo down, as the kernel makes it), until the test ends. Netlink sockets
// opened there, and commands started from this goroutine, stay there.
func EnterNewNetns(t testing.TB) netns.NsHandle {
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
		defer orig.Close()
		defer ns.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the goroutine ends.
			t.Errorf("restore netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	return ns
}

// LinkUp sets a link of the current namespace up.
func LinkUp(t testing.TB, name string) {
	t.Helper()
	must(t, "set "+name+" up", setUp(name))
}

// In runs fn with the calling (locked) thread inside ns, then returns to
// the namespace it was in.
func In(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	cur, err := netns.Get()
	must(t, "get current netns", err)
	defer cur.Close()
	must(t, "enter netns", netns.Set(ns))
	defer func() { must(t, "return to netns", netns.Set(cur)) }()
	fn()
}

// Host is a namespace wired to the current one by a veth pair.
type Host struct {
	NS   netns.NsHandle
	Addr netip.Addr
}

// AddHost creates a namespace whose eth0 has addr/prefixLen and a default
// route via gw; the peer end, named peer, stays in the current namespace
// and is attached to bridge when it is not "" (else it gets gw/prefixLen).
func AddHost(t testing.TB, peer, bridge string, addr netip.Prefix, gw netip.Addr) *Host {
	t.Helper()
	cur, err := netns.Get()
	must(t, "get current netns", err)
	defer cur.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: peer}, PeerName: peer + "p"}
	must(t, "add veth "+peer, netlink.LinkAdd(veth))
	ns, err := netns.New() // the thread is now in ns
	must(t, "create host netns", err)
	t.Cleanup(func() { ns.Close() })
	must(t, "return to node netns", netns.Set(cur))
	inner, err := netlink.LinkByName(peer + "p")
	must(t, "find veth peer", err)
	must(t, "move veth peer", netlink.LinkSetNsFd(inner, int(ns)))
	if bridge != "" {
		br, err := netlink.LinkByName(bridge)
		must(t, "find bridge", err)
		must(t, "attach "+peer, netlink.LinkSetMaster(veth, br))
		// Like the CNI bridge plugin's hairpinMode (and kubelet's
		// hairpin-veth): with br_netfilter, a pod's reply to its own
		// service is bridged back out of the port it came in on.
		must(t, "hairpin "+peer, netlink.LinkSetHairpin(veth, true))
	} else {
		must(t, "address "+peer, addAddr(peer, netip.PrefixFrom(gw, addr.Bits())))
	}
	must(t, "set "+peer+" up", setUp(peer))
	In(t, ns, func() {
		must(t, "set lo up", setUp("lo"))
		must(t, "rename eth0", renameLink(peer+"p", "eth0"))
		must(t, "address eth0", addAddr("eth0", addr))
		must(t, "set eth0 up", setUp("eth0"))
		must(t, "default route", netlink.RouteAdd(&netlink.Route{Gw: gw.AsSlice(), LinkIndex: linkIndex(t, "eth0")}))
	})
	return &Host{NS: ns, Addr: addr.Addr()}
}

// AddBridge creates an up bridge holding gw.
func AddBridge(t testing.TB, name string, gw netip.Prefix) {
	t.Helper()
	must(t, "add bridge "+name, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}))
	must(t, "address "+name, addAddr(name, gw))
	must(t, "set "+name+" up", setUp(name))
}

// Listen opens a TCP listener inside ns; it keeps serving from any thread.
func Listen(t testing.TB, ns netns.NsHandle, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	In(t, ns, func() {
		var err error
		l, err = net.Listen("tcp", addr)
		must(t, "listen on "+addr, err)
	})
	t.Cleanup(func() { l.Close() })
	return l
}

// AddAddress adds p to a link of the current namespace.
func AddAddress(t testing.TB, link string, p netip.Prefix) {
	t.Helper()
	must(t, "address "+link, addAddr(link, p))
}

func linkIndex(t testing.TB, name string) int {
	l, err := netlink.LinkByName(name)
	must(t, "find "+name, err)
	return l.Attrs().Index
}

func setUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func renameLink(from, to string) error {
	l, err := netlink.LinkByName(from)
	if err != nil {
		return err
	}
	return netlink.LinkSetName(l, to)
}

func addAddr(name string, p netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	flags := 0
	if p.Addr().Is6() {
		flags = unix.IFA_F_NODAD // usable at once, not tentative for a second
	}
	return netlink.AddrAdd(l, &netlink.Addr{IPNet: ipn, Flags: flags})
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", what, err))
	}
}
