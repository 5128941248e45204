// Package upstreamproxier runs upstream kube-proxy's IPVS proxier
// (k8s.io/kubernetes/pkg/proxy/ipvs v1.37.2) in-process on upstream's fakes
// for IPVS, ipset, iptables and sysctl, and its nftables proxier
// (k8s.io/kubernetes/pkg/proxy/nftables) on knftables' Fake, with every
// call counted, for the differential test (test/parity) and the benchmarks
// (test/bench).
//
// Upstream's netlink handle for kube-ipvs0 and the node's addresses cannot
// be replaced from outside its package: it works on the real links of the
// calling thread's network namespace. RunInNewNetns and ResetLinks give a
// process a namespace of its own for that.
package upstreamproxier

import (
	"maps"
	"sync"
)

// Calls counts calls by "<fake>.<method>"; safe for concurrent use.
type Calls struct {
	mu sync.Mutex
	n  map[string]int
}

func newCalls() *Calls { return &Calls{n: map[string]int{}} }

func (c *Calls) add(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

// Snapshot returns a copy of the counts.
func (c *Calls) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// Total is the number of calls counted since the last Reset.
func (c *Calls) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, n := range c.n {
		total += n
	}
	return total
}

// Reset sets every count to zero.
func (c *Calls) Reset() {
	c.mu.Lock()
	clear(c.n)
	c.mu.Unlock()
}
