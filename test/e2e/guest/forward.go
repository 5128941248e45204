package guest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarder relays connections accepted in the node namespace to a TCP address reached
// from the VM's root namespace (the API server behind qemu's guestfwd).
type Forwarder struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
}

// ForwardAPIServer listens on APIServerLocal inside the node namespace and relays to target.
func (n *Node) ForwardAPIServer(target string) (*Forwarder, error) {
	f := &Forwarder{target: target}
	err := InNetns(n.NS, func() error {
		var err error
		f.l, err = net.Listen("tcp", APIServerLocal)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in node %s: %w", APIServerLocal, n.Name, err)
	}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		go f.relay(c)
	}
}

// relay dials the target from an unlocked goroutine, so from the root namespace.
func (f *Forwarder) relay(in net.Conn) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	// Through guestfwd a close by the host side may never be seen: when either side
	// ends, end both.
	<-done
	in.Close()
	out.Close()
	<-done
}

// Close stops accepting; relayed connections end when either side ends.
func (f *Forwarder) Close() error {
	err := f.l.Close()
	f.wg.Wait()
	return err
}
