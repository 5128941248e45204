package guest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"
)

// The node's fixed layout: pods on a bridge, one client host behind the node's uplink.
const (
	Bridge      = "cbr0"
	Uplink      = "eth0"
	PodCIDR     = "10.244.0.0/24"
	ClusterCIDR = "10.244.0.0/16"
	bridgeAddr  = "10.244.0.1/24"
	nodeAddr    = "192.168.50.1/24"
	clientAddr  = "192.168.50.2/24"
)

// Host is a namespace wired to the node by a veth pair.
type Host struct {
	Name string
	NS   netns.NsHandle
	Addr netip.Addr
	// Veth is the node-side end of its link.
	Veth string
}

// Node is a network namespace set up like a Kubernetes node: a bridge for the pods and a
// client host behind its uplink. The proxier under test runs in it.
type Node struct {
	Name   string
	NS     netns.NsHandle
	IP     netip.Addr
	Client *Host
	links  *links
}

// NewNode creates the node namespace and its client host.
func NewNode(name string) (*Node, error) {
	ns, err := NewNetns()
	if err != nil {
		return nil, err
	}
	n := &Node{Name: name, NS: ns, IP: netip.MustParsePrefix(nodeAddr).Addr()}
	if err := n.setup(); err != nil {
		n.Close()
		return nil, fmt.Errorf("set up node %s: %w", name, err)
	}
	return n, nil
}

func (n *Node) setup() error {
	var err error
	if n.links, err = linksIn(n.NS); err != nil {
		return err
	}
	if err := n.links.up("lo"); err != nil {
		return err
	}
	if err := n.links.addBridge(Bridge, netip.MustParsePrefix(bridgeAddr)); err != nil {
		return err
	}
	if err := n.WriteSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	n.Client, err = n.addHost("client", Uplink, netip.MustParsePrefix(clientAddr), "")
	if err != nil {
		return err
	}
	return n.links.addAddr(Uplink, netip.MustParsePrefix(nodeAddr))
}

// addHost creates a namespace whose eth0 has addr and a default route via the node; the
// node-side end is named veth and, when bridge is not "", attached to it.
func (n *Node) addHost(name, veth string, addr netip.Prefix, bridge string) (*Host, error) {
	ns, err := NewNetns()
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NS: ns, Addr: addr.Addr(), Veth: veth}
	if err := n.wireHost(h, addr, bridge); err != nil {
		ns.Close()
		return nil, fmt.Errorf("wire host %s: %w", name, err)
	}
	return h, nil
}

func (n *Node) wireHost(h *Host, addr netip.Prefix, bridge string) error {
	if err := n.links.vethInto(h.Veth, "eth0", h.NS); err != nil {
		return err
	}
	if bridge != "" {
		if err := n.links.setMaster(h.Veth, bridge); err != nil {
			return err
		}
	}
	if err := n.links.up(h.Veth); err != nil {
		return err
	}
	in, err := linksIn(h.NS)
	if err != nil {
		return err
	}
	defer in.close()
	gw := netip.MustParsePrefix(bridgeAddr).Addr()
	if bridge == "" {
		gw = netip.MustParsePrefix(nodeAddr).Addr()
	}
	for _, step := range []func() error{
		func() error { return in.up("lo") },
		func() error { return in.addAddr("eth0", addr) },
		func() error { return in.up("eth0") },
		func() error { return in.defaultRoute("eth0", gw) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// LinkExists tells whether the node has a link of that name.
func (n *Node) LinkExists(name string) bool { return n.links.exists(name) }

// DeleteLink deletes a link of the node (a veth's peer goes with it).
func (n *Node) DeleteLink(name string) error { return n.links.del(name) }

// Addrs lists the addresses on a link of the node.
func (n *Node) Addrs(link string) ([]netip.Addr, error) { return n.links.addrs(link) }

// DeleteAddr removes an address from a link of the node.
func (n *Node) DeleteAddr(link string, p netip.Prefix) error { return n.links.delAddr(link, p) }

// WriteSysctl writes a sysctl of the node's namespace (path under /proc/sys).
func (n *Node) WriteSysctl(path, value string) error {
	return InNetns(n.NS, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0o644); err != nil {
			return fmt.Errorf("write sysctl %s=%s: %w", path, value, err)
		}
		return nil
	})
}

// ReadSysctl reads a sysctl of the node's namespace.
func (n *Node) ReadSysctl(path string) (string, error) {
	var value string
	err := InNetns(n.NS, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", path))
		if err != nil {
			return fmt.Errorf("read sysctl %s: %w", path, err)
		}
		value = string(trimNewline(b))
		return nil
	})
	return value, err
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Close releases the node's namespaces; they disappear once no process runs in them.
func (n *Node) Close() error {
	var errs []error
	if n.links != nil {
		n.links.close()
	}
	if n.Client != nil {
		errs = append(errs, n.Client.NS.Close())
	}
	errs = append(errs, n.NS.Close())
	return errors.Join(errs...)
}

// NodeIP is the node's address (on its uplink, toward the client).
func NodeIP() netip.Addr { return netip.MustParsePrefix(nodeAddr).Addr() }
