package parity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	upstream "k8s.io/kubernetes/pkg/proxy/ipvs"
	ipsettest "k8s.io/kubernetes/pkg/proxy/ipvs/ipset/testing"
	utilipvs "k8s.io/kubernetes/pkg/proxy/ipvs/util"
	ipvstest "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"
)

// upstreamSide is upstream's proxier, one per family, on upstream's fakes
// for IPVS, ipset, iptables and sysctl, and on the namespace's real links.
type upstreamSide struct {
	ipvs              *lockedIPVS
	ipset             *ipsettest.FakeIPSet
	providersByFamily map[v1.IPFamily]proxy.Provider
}

func newUpstream(ctx context.Context, env *environment, conns connModel) (*upstreamSide, error) {
	u := &upstreamSide{
		ipvs:  &lockedIPVS{fake: ipvstest.NewFake(), conns: conns},
		ipset: ipsettest.NewFake(upstream.MinIPSetCheckVersion),
	}
	if err := u.seedForeign(env); err != nil {
		return nil, err
	}
	return u, u.startProxiers(ctx, env)
}

// startProxiers makes new proxiers on the side's IPVS and ipset state, as a
// restarted kube-proxy would find it.
func (u *upstreamSide) startProxiers(ctx context.Context, env *environment) error {
	u.providersByFamily = map[v1.IPFamily]proxy.Provider{}
	sysctl := sysctltest.NewFake()
	for _, family := range env.families {
		ipt := iptablestest.NewFake()
		if family == v1.IPv6Protocol {
			ipt = iptablestest.NewIPv6Fake()
		}
		nodeIP := net.IP(nodeIPOf(family).AsSlice())
		p, err := upstream.NewProxier(ctx, upstreamConfig(env), family, ipt, u.ipvs, u.ipset, sysctl,
			proxyutil.NewNoOpLocalDetector(), nodeName, nodeIP, nil, nil, false)
		if err != nil {
			return fmt.Errorf("upstream NewProxier %s: %w", family, err)
		}
		u.providersByFamily[family] = p
	}
	return nil
}

func upstreamConfig(env *environment) *kubeproxyconfig.KubeProxyConfiguration {
	return &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod:        metav1.Duration{Duration: 30 * time.Second},
		IPTables:          kubeproxyconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14)},
		IPVS:              kubeproxyconfig.KubeProxyIPVSConfiguration{Scheduler: env.scheduler, ExcludeCIDRs: env.excludeCIDRs},
		NodePortAddresses: env.nodePortAddresses,
	}
}

// seedForeign puts the virtual servers no proxier made into the table.
func (u *upstreamSide) seedForeign(env *environment) error {
	for _, f := range env.foreignServices {
		vs := &utilipvs.VirtualServer{Address: f.addr.AsSlice(), Protocol: string(f.proto), Port: f.port, Scheduler: f.schedulerOrRR()}
		if err := u.ipvs.AddVirtualServer(vs); err != nil {
			return fmt.Errorf("seed upstream %s: %w", f.key(), err)
		}
		for _, d := range f.dests {
			rs := &utilipvs.RealServer{Address: d.to.Addr().AsSlice(), Port: d.to.Port(), Weight: d.weight}
			if err := u.ipvs.AddRealServer(vs, rs); err != nil {
				return fmt.Errorf("seed upstream %s -> %s: %w", f.key(), d.to, err)
			}
		}
	}
	return nil
}

// state renders what upstream left: IPVS table, kube-ipvs0, ipsets.
func (u *upstreamSide) state() ([]string, error) {
	var lines []string
	vss, _ := u.ipvs.GetVirtualServers()
	for _, vs := range vss {
		addr, _ := netip.AddrFromSlice(vs.Address)
		key := vsKey(vs.Protocol, addr.Unmap(), vs.Port)
		lines = append(lines, vsLine(key, vs.Scheduler, uint32(vs.Flags), vs.Timeout))
		rss, err := u.ipvs.GetRealServers(vs)
		if err != nil {
			return nil, err
		}
		for _, rs := range rss {
			a, _ := netip.AddrFromSlice(rs.Address)
			lines = append(lines, rsLine(key, netip.AddrPortFrom(a.Unmap(), rs.Port), rs.Weight))
		}
	}
	bound, err := boundAddresses()
	if err != nil {
		return nil, err
	}
	for _, a := range bound {
		lines = append(lines, boundLine(a))
	}
	for name, set := range u.ipset.Sets {
		lines = append(lines, setLine(name, string(set.SetType)))
		for _, e := range u.ipset.Entries[name].UnsortedList() {
			lines = append(lines, memberLine(name, e))
		}
	}
	return lines, nil
}

// lockedIPVS serializes upstream's fake IPVS (upstream's graceful
// termination goroutine calls it too), hands out copies so that upstream
// never aliases the fake's slices, and reports the connection counts of
// connModel on real servers, as the kernel would: they decide whether
// upstream deletes a real server at once or sets it to weight 0.
type lockedIPVS struct {
	mu    sync.Mutex
	fake  *ipvstest.FakeIPVS
	conns connModel
}

var _ utilipvs.Interface = (*lockedIPVS)(nil)

func (l *lockedIPVS) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fake.Flush()
}

func (l *lockedIPVS) AddVirtualServer(vs *utilipvs.VirtualServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *vs
	return l.fake.AddVirtualServer(&c)
}

func (l *lockedIPVS) UpdateVirtualServer(vs *utilipvs.VirtualServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *vs
	return l.fake.UpdateVirtualServer(&c)
}

func (l *lockedIPVS) DeleteVirtualServer(vs *utilipvs.VirtualServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fake.DeleteVirtualServer(vs)
}

func (l *lockedIPVS) GetVirtualServer(vs *utilipvs.VirtualServer) (*utilipvs.VirtualServer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	got, err := l.fake.GetVirtualServer(vs)
	if got == nil {
		return nil, err
	}
	c := *got
	return &c, err
}

func (l *lockedIPVS) GetVirtualServers() ([]*utilipvs.VirtualServer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	vss, err := l.fake.GetVirtualServers()
	out := make([]*utilipvs.VirtualServer, 0, len(vss))
	for _, vs := range vss {
		c := *vs
		out = append(out, &c)
	}
	return out, err
}

func (l *lockedIPVS) AddRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *rs
	return l.fake.AddRealServer(vs, &c)
}

func (l *lockedIPVS) GetRealServers(vs *utilipvs.VirtualServer) ([]*utilipvs.RealServer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rss, err := l.fake.GetRealServers(vs)
	addr, _ := netip.AddrFromSlice(vs.Address)
	key := vsKey(vs.Protocol, addr.Unmap(), vs.Port)
	out := make([]*utilipvs.RealServer, 0, len(rss))
	for _, rs := range rss {
		c := *rs
		a, _ := netip.AddrFromSlice(rs.Address)
		c.ActiveConn = l.conns.active(key, netip.AddrPortFrom(a.Unmap(), rs.Port))
		out = append(out, &c)
	}
	return out, err
}

func (l *lockedIPVS) DeleteRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fake.DeleteRealServer(vs, rs)
}

func (l *lockedIPVS) UpdateRealServer(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := *rs
	return l.fake.UpdateRealServer(vs, &c)
}

func (l *lockedIPVS) ConfigureTimeouts(tcp, tcpFin, udp time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fake.ConfigureTimeouts(tcp, tcpFin, udp)
}
