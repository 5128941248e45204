package guest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Forwarder relays connections accepted in the node namespace to a TCP address reached
// from the VM's root namespace (the API server behind qemu's guestfwd). Cut and Restore
// take the API server away from the node and give it back (an outage as the node's
// proxier sees it).
type Forwarder struct {
	ns     netns.NsHandle
	node   string
	target string
	wg     sync.WaitGroup

	mu sync.Mutex
	l  net.Listener // nil while cut
	// conns are the relayed connections of the current generation, both ends.
	conns map[net.Conn]struct{}
	// gen counts cuts: a relay accepted before a cut does not register after it.
	gen int
}

// ForwardAPIServer listens on APIServerLocal inside the node namespace and relays to target.
func (n *Node) ForwardAPIServer(target string) (*Forwarder, error) {
	f := &Forwarder{ns: n.NS, node: n.Name, target: target, conns: map[net.Conn]struct{}{}}
	if err := f.listen(); err != nil {
		return nil, err
	}
	return f, nil
}

// listen opens the listener in the node namespace and serves it.
func (f *Forwarder) listen() error {
	var l net.Listener
	err := InNetns(f.ns, func() error {
		var err error
		l, err = net.Listen("tcp", APIServerLocal)
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s in node %s: %w", APIServerLocal, f.node, err)
	}
	f.mu.Lock()
	f.l = l
	gen := f.gen
	f.mu.Unlock()
	f.wg.Add(1)
	go f.serve(l, gen)
	return nil
}

func (f *Forwarder) serve(l net.Listener, gen int) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go f.relay(c, gen)
	}
}

// track registers a relayed connection, or closes it and returns false when a cut
// came after its accept.
func (f *Forwarder) track(c net.Conn, gen int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// relay dials the target from an unlocked goroutine, so from the root namespace.
func (f *Forwarder) relay(in net.Conn, gen int) {
	if !f.track(in, gen) {
		return
	}
	defer f.untrack(in)
	defer in.Close()
	out, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		return
	}
	if !f.track(out, gen) {
		return
	}
	defer f.untrack(out)
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

// Cut makes the API server unreachable from the node, as when it stops: the listener
// closes (new connections are refused) and every relayed connection is closed.
func (f *Forwarder) Cut() error {
	f.mu.Lock()
	l := f.l
	f.l = nil
	f.gen++
	for c := range f.conns {
		c.Close()
	}
	clear(f.conns)
	f.mu.Unlock()
	if l == nil {
		return fmt.Errorf("cut API server relay of node %s: already cut", f.node)
	}
	err := l.Close()
	f.wg.Wait()
	if err != nil {
		return fmt.Errorf("close API server relay listener of node %s: %w", f.node, err)
	}
	return nil
}

// Restore listens again after a Cut.
func (f *Forwarder) Restore() error { return f.listen() }

// Close stops accepting; relayed connections end when either side ends.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	l := f.l
	f.l = nil
	f.mu.Unlock()
	var err error
	if l != nil {
		err = l.Close()
	}
	f.wg.Wait()
	return err
}
