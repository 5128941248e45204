package upstreamproxier

import (
	"sync"
	"time"

	utilipvs "k8s.io/kubernetes/pkg/proxy/ipvs/util"
	ipvstest "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
)

// ActiveConnsFunc gives the active connection count the kernel would
// report for a real server: it decides whether upstream deletes a real
// server at once or sets it to weight 0.
type ActiveConnsFunc func(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) int

// IPVS is upstream's fake IPVS made fit for upstream's proxier: calls are
// serialized (upstream's graceful termination goroutine calls it too),
// results are copies (the kernel hands out fresh objects, the fake would
// alias its own), real servers carry the connections activeConns reports,
// and every call is counted as "ipvs.<Method>".
type IPVS struct {
	mu          sync.Mutex
	fake        *ipvstest.FakeIPVS
	activeConns ActiveConnsFunc
	calls       *Calls
}

var _ utilipvs.Interface = (*IPVS)(nil)

// enter locks the fake and counts the call; the caller unlocks.
func (l *IPVS) enter(method string) {
	l.calls.add("ipvs." + method)
	l.mu.Lock()
}

func (l *IPVS) Flush() error {
	l.enter("Flush")
	defer l.mu.Unlock()
	return l.fake.Flush()
}

func (l *IPVS) AddVirtualServer(vs *utilipvs.VirtualServer) error {
	l.enter("AddVirtualServer")
	defer l.mu.Unlock()
	c := *vs
	return l.fake.AddVirtualServer(&c)
}

func (l *IPVS) UpdateVirtualServer(vs *utilipvs.VirtualServer) error {
	l.enter("UpdateVirtualServer")
	defer l.mu.Unlock()
	c := *vs
	return l.fake.UpdateVirtualServer(&c)
}

func (l *IPVS) DeleteVirtualServer(vs *utilipvs.VirtualServer) error {
	l.enter("DeleteVirtualServer")
	defer l.mu.Unlock()
	return l.fake.DeleteVirtualServer(vs)
}

func (l *IPVS) GetVirtualServer(vs *utilipvs.VirtualServer) (*utilipvs.VirtualServer, error) {
	l.enter("GetVirtualServer")
	defer l.mu.Unlock()
	got, err := l.fake.GetVirtualServer(vs)
	if got == nil {
		return nil, err
	}
	c := *got
	return &c, err
}

func (l *IPVS) GetVirtualServers() ([]*utilipvs.VirtualServer, error) {
	l.enter("GetVirtualServers")
	defer l.mu.Unlock()
	vss, err := l.fake.GetVirtualServers()
	out := make([]*utilipvs.VirtualServer, 0, len(vss))
	for _, vs := range vss {
		c := *vs
		out = append(out, &c)
	}
	return out, err
}

func (l *IPVS) AddRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.enter("AddRealServer")
	defer l.mu.Unlock()
	c := *rs
	return l.fake.AddRealServer(vs, &c)
}

func (l *IPVS) GetRealServers(vs *utilipvs.VirtualServer) ([]*utilipvs.RealServer, error) {
	l.enter("GetRealServers")
	defer l.mu.Unlock()
	rss, err := l.fake.GetRealServers(vs)
	out := make([]*utilipvs.RealServer, 0, len(rss))
	for _, rs := range rss {
		c := *rs
		if l.activeConns != nil {
			c.ActiveConn = l.activeConns(vs, rs)
		}
		out = append(out, &c)
	}
	return out, err
}

func (l *IPVS) DeleteRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.enter("DeleteRealServer")
	defer l.mu.Unlock()
	return l.fake.DeleteRealServer(vs, rs)
}

func (l *IPVS) UpdateRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.enter("UpdateRealServer")
	defer l.mu.Unlock()
	c := *rs
	return l.fake.UpdateRealServer(vs, &c)
}

func (l *IPVS) ConfigureTimeouts(tcp, tcpFin, udp time.Duration) error {
	l.enter("ConfigureTimeouts")
	defer l.mu.Unlock()
	return l.fake.ConfigureTimeouts(tcp, tcpFin, udp)
}
