package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// Ports the pod server listens on.
const (
	HTTPPort = 8080 // HTTP/1.0: answers its pod name and closes first
	EchoPort = 9000 // long-lived TCP: answers every line with its pod name
	UDPPort  = 5353 // UDP: answers every datagram with its pod name
)

// Pod is a network namespace on the node's bridge with a server process in it.
type Pod struct {
	Host
	cmd  *exec.Cmd
	done chan error
}

// StartPod creates a pod namespace with addr on the bridge and starts the pod server in
// it: this program run again as `<exe> pod-server NAME`, killed when the caller dies.
func (n *Node) StartPod(ctx context.Context, name string, addr netip.Addr) (*Pod, error) {
	veth := fmt.Sprintf("veth%d", addr.As4()[3])
	h, err := n.addHost(name, veth, netip.PrefixFrom(addr, netip.MustParsePrefix(PodCIDR).Bits()), Bridge)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		h.NS.Close()
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, "pod-server", name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := StartIn(h.NS, cmd); err != nil {
		h.NS.Close()
		return nil, fmt.Errorf("start pod %s: %w", name, err)
	}
	p := &Pod{Host: *h, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	if err := n.waitServing(ctx, p); err != nil {
		_, _, _ = n.KillPod(p)
		return nil, err
	}
	return p, nil
}

// podStartTimeout bounds a pod's start (exec of the driver as its server);
// a starved TCG VM took more than 10 s once, failing a run that had
// nothing wrong with the proxier.
const podStartTimeout = 30 * time.Second

// waitServing waits until the pod answers on its HTTP port from the node.
func (n *Node) waitServing(ctx context.Context, p *Pod) error {
	addr := netip.AddrPortFrom(p.Addr, HTTPPort).String()
	deadline := time.Now().Add(podStartTimeout)
	for {
		var err error
		_ = InNetns(n.NS, func() error {
			var c net.Conn
			if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
			}
			return nil
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pod %s not serving on %s: %w", p.Name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CutNetwork deletes the pod's link; its process keeps running with no network.
func (n *Node) CutNetwork(p *Pod) error {
	if err := n.DeleteLink(p.Veth); err != nil {
		return fmt.Errorf("cut network of pod %s: %w", p.Name, err)
	}
	return nil
}

// nsGoneWait is how long KillPod waits for a pod's namespace to disappear by itself.
const nsGoneWait = 3 * time.Second

// KillPod kills the pod's process (SIGKILL), releases its namespace and waits until the
// namespace is gone (its link disappears from the node). A namespace can outlive its
// processes while orphaned TCP sockets in it still retransmit; then its link is deleted
// so that the pod is off the network all the same, and lingered says so. It returns how
// long the pod took to disappear.
func (n *Node) KillPod(p *Pod) (took time.Duration, lingered bool, err error) {
	start := time.Now()
	var errs []error
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("kill pod %s: %w", p.Name, err))
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		errs = append(errs, fmt.Errorf("pod %s: process did not exit", p.Name))
	}
	if p.NS != netns.None() {
		errs = append(errs, p.NS.Close())
		p.NS = netns.None()
	}
	for n.LinkExists(p.Veth) && time.Since(start) < nsGoneWait {
		time.Sleep(10 * time.Millisecond)
	}
	if n.LinkExists(p.Veth) {
		lingered = true
		if err := n.DeleteLink(p.Veth); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: namespace lingered: %w", p.Name, err))
		}
	}
	return time.Since(start), lingered, errors.Join(errs...)
}
