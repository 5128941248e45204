package parity

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// childEnv names the test a re-executed test binary runs in its namespace.
const childEnv = "IPVS_PROXY_PARITY_CHILD"

// dummyDevice is the device both proxiers bind service addresses on.
const dummyDevice = "kube-ipvs0"

// inOwnNetns runs the calling test again in a child process that lives in
// a fresh network namespace, so that upstream's proxier (whose netlink
// handle for kube-ipvs0 and the node's addresses cannot be replaced from
// outside its package) works on links of the test's own. It returns true
// in that child, where the caller runs the test's body, and false in the
// parent, once the child has finished. The namespace is made with
// CLONE_NEWNET when root, else with an unprivileged user namespace; the test
// is skipped when neither is allowed.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	switch os.Getenv(childEnv) {
	case t.Name():
		return true
	case "":
	default:
		t.Skip("the child process of another parity test")
	}
	var startErr error
	for _, attr := range namespaceAttrs() {
		cmd := exec.Command(os.Args[0], childArgs(t)...)
		cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			startErr = errors.Join(startErr, err)
			continue
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s in its network namespace: %v (its output is above)", t.Name(), err)
		}
		return false
	}
	t.Skipf("cannot make a network namespace (needs root or unprivileged user namespaces): %v", startErr)
	return false
}

// childArgs passes the test flags that matter on to the child.
func childArgs(t *testing.T) []string {
	run := "^" + t.Name() + "$"
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		run = f.Value.String() // keeps a subtest selection
	}
	args := []string{"-test.run=" + run, "-test.count=1"}
	for _, name := range []string{"test.v", "test.short", "test.failfast", "test.timeout"} {
		if f := flag.Lookup(name); f != nil {
			args = append(args, fmt.Sprintf("-%s=%s", name, f.Value.String()))
		}
	}
	return args
}

// namespaceAttrs are the ways to start the child, tried in order.
func namespaceAttrs() []*syscall.SysProcAttr {
	userns := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		return []*syscall.SysProcAttr{userns}
	}
	return []*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}, userns}
}

// link is one of the node's network devices with its addresses.
type link struct {
	name  string
	addrs []netip.Prefix
}

// resetLinks makes the namespace hold lo (up), kube-ipvs0 with the given
// addresses and the given links with theirs. Links are made once and then
// only their addresses change: deleting a link costs the kernel tens of
// milliseconds. kube-ipvs0 is a dummy where the kernel has the driver (the
// test VM) and a bridge otherwise (this host has no dummy driver); upstream
// only looks it up by name, so either serves.
func resetLinks(links []link, bound []netip.Addr) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	var dummy []netip.Prefix
	for _, a := range bound {
		dummy = append(dummy, hostPrefix(a))
	}
	for _, l := range append([]link{{name: dummyDevice, addrs: dummy}}, links...) {
		if err := ensureDevice(l.name); err != nil {
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

// setAddresses makes a link's addresses (but IPv6 link-local) exactly l.addrs.
func setAddresses(l link) error {
	dev, err := netlink.LinkByName(l.name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", l.name, err)
	}
	have, err := netlink.AddrList(dev, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", l.name, err)
	}
	want := map[netip.Prefix]bool{}
	for _, p := range l.addrs {
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
			return fmt.Errorf("delete address %s from %s: %w", p, l.name, err)
		}
	}
	for _, p := range l.addrs {
		if want[p] {
			if err := addAddress(l.name, p); err != nil {
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
func addAddress(dev string, p netip.Prefix) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find link %s: %w", dev, err)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(p), Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, dev, err)
	}
	return nil
}

// boundAddresses lists kube-ipvs0's addresses, without IPv6 link-local ones.
func boundAddresses() ([]netip.Addr, error) {
	l, err := netlink.LinkByName(dummyDevice)
	if err != nil {
		return nil, fmt.Errorf("find link %s: %w", dummyDevice, err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", dummyDevice, err)
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
