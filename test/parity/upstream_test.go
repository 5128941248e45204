package parity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	utilipvs "k8s.io/kubernetes/pkg/proxy/ipvs/util"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

// upstreamSide is upstream's proxier, one per family, on upstream's fakes
// for IPVS, ipset, iptables and sysctl (test/upstreamproxier), and on the
// namespace's real links.
type upstreamSide struct {
	node              *upstreamproxier.Node
	providersByFamily map[v1.IPFamily]proxy.Provider
}

func newUpstream(ctx context.Context, env *environment, conns connModel) (*upstreamSide, error) {
	u := &upstreamSide{node: upstreamproxier.NewNode(conns.activeConns)}
	if err := u.seedForeign(env); err != nil {
		return nil, err
	}
	return u, u.startProxiers(ctx, env)
}

// startProxiers makes new proxiers on the side's IPVS and ipset state, as a
// restarted kube-proxy would find it.
func (u *upstreamSide) startProxiers(ctx context.Context, env *environment) error {
	u.providersByFamily = map[v1.IPFamily]proxy.Provider{}
	for _, family := range env.families {
		nodeIP := net.IP(nodeIPOf(family).AsSlice())
		p, err := u.node.NewProxier(ctx, upstreamConfig(env), family, nodeName, nodeIP)
		if err != nil {
			return err
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
		if err := u.node.IPVS.AddVirtualServer(vs); err != nil {
			return fmt.Errorf("seed upstream %s: %w", f.key(), err)
		}
		for _, d := range f.dests {
			rs := &utilipvs.RealServer{Address: d.to.Addr().AsSlice(), Port: d.to.Port(), Weight: d.weight}
			if err := u.node.IPVS.AddRealServer(vs, rs); err != nil {
				return fmt.Errorf("seed upstream %s -> %s: %w", f.key(), d.to, err)
			}
		}
	}
	return nil
}

// state renders what upstream left: IPVS table, kube-ipvs0, ipsets.
func (u *upstreamSide) state() ([]string, error) {
	var lines []string
	vss, _ := u.node.IPVS.GetVirtualServers()
	for _, vs := range vss {
		addr, _ := netip.AddrFromSlice(vs.Address)
		key := vsKey(vs.Protocol, addr.Unmap(), vs.Port)
		lines = append(lines, vsLine(key, vs.Scheduler, uint32(vs.Flags), vs.Timeout))
		rss, err := u.node.IPVS.GetRealServers(vs)
		if err != nil {
			return nil, err
		}
		for _, rs := range rss {
			a, _ := netip.AddrFromSlice(rs.Address)
			lines = append(lines, rsLine(key, netip.AddrPortFrom(a.Unmap(), rs.Port), rs.Weight))
		}
	}
	bound, err := upstreamproxier.BoundAddresses()
	if err != nil {
		return nil, err
	}
	for _, a := range bound {
		lines = append(lines, boundLine(a))
	}
	for name, set := range u.node.IPSet.Fake.Sets {
		lines = append(lines, setLine(name, string(set.SetType)))
		for _, e := range u.node.IPSet.Fake.Entries[name].UnsortedList() {
			lines = append(lines, memberLine(name, e))
		}
	}
	return lines, nil
}

// activeConns reports the model's connections on upstream's real servers,
// keyed as ours are.
func (m connModel) activeConns(vs *utilipvs.VirtualServer, rs *utilipvs.RealServer) int {
	addr, _ := netip.AddrFromSlice(vs.Address)
	a, _ := netip.AddrFromSlice(rs.Address)
	return m.active(vsKey(vs.Protocol, addr.Unmap(), vs.Port), netip.AddrPortFrom(a.Unmap(), rs.Port))
}
