package parity

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

// oursSide is our proxier, one per family, on our strict fakes.
type oursSide struct {
	ipvs              *ipvs.Fake
	ipset             *ipset.Fake
	netdev            *netdev.Fake
	conns             connModel
	providersByFamily map[v1.IPFamily]proxy.Provider
}

// ourSysctls are the sysctls our proxier reads, at a fresh kernel's values.
func ourSysctls() map[string]int {
	return map[string]int{
		"net/ipv4/vs/conntrack": 0, "net/ipv4/vs/conn_reuse_mode": 1, "net/ipv4/vs/expire_nodest_conn": 0,
		"net/ipv4/vs/expire_quiescent_template": 0, "net/ipv4/ip_forward": 0,
		"net/ipv4/conf/all/arp_ignore": 0, "net/ipv4/conf/all/arp_announce": 0,
	}
}

func newOurs(ctx context.Context, env *environment, gate bool, conns connModel) (*oursSide, error) {
	o := &oursSide{ipvs: ipvs.NewFake(), ipset: ipset.NewFake(), netdev: netdev.NewFake(), conns: conns}
	if err := o.seedNode(env); err != nil {
		return nil, err
	}
	return o, o.startProxiers(ctx, env, gate)
}

// startProxiers makes new proxiers on the side's fake kernel, as a
// restarted ipvs-proxy would find it.
func (o *oursSide) startProxiers(ctx context.Context, env *environment, gate bool) error {
	o.providersByFamily = map[v1.IPFamily]proxy.Provider{}
	table := &connIPVS{Fake: o.ipvs, conns: o.conns}
	sysctls := sysctl.NewFake(ourSysctls())
	excluded, err := parsePrefixes(env.excludeCIDRs)
	if err != nil {
		return err
	}
	for _, family := range env.families {
		cfg := ourproxier.Config{
			IPFamily: family, NodeName: nodeName, NodeIP: nodeIPOf(family),
			SyncPeriod: 30 * time.Second, Scheduler: env.scheduler, ExcludeCIDRs: excluded,
			MasqueradeBit: 14, LocalDetector: proxyutil.NewNoOpLocalDetector(),
			NodePortAddresses: env.nodePortAddresses, ImmediateTermination: gate,
		}
		deps := ourproxier.Deps{
			IPVS: table, IPSet: o.ipset, IPTables: iptables.NewFake(family == v1.IPv6Protocol), NetDev: o.netdev,
			Conntrack: conntrack.NewFake(), Sysctl: sysctls, KernelVersion: "6.1.0-56-amd64",
		}
		p, err := ourproxier.NewProxier(ctx, cfg, deps)
		if err != nil {
			return fmt.Errorf("our NewProxier %s: %w", family, err)
		}
		o.providersByFamily[family] = p
	}
	return nil
}

// seedNode gives our fake the namespace's links and the state no proxier
// made: foreign virtual servers and addresses already on kube-ipvs0.
func (o *oursSide) seedNode(env *environment) error {
	if err := o.netdev.AddDevice("lo", netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()); err != nil {
		return err
	}
	for _, l := range env.links {
		var addrs []netip.Addr
		for _, p := range l.addrs {
			addrs = append(addrs, p.Addr())
		}
		if err := o.netdev.AddDevice(l.name, addrs...); err != nil {
			return err
		}
	}
	if len(env.foreignBound) > 0 {
		if err := o.netdev.EnsureDummy(dummyDevice); err != nil {
			return err
		}
	}
	for _, a := range env.foreignBound {
		if err := o.netdev.AddAddress(dummyDevice, a); err != nil {
			return err
		}
	}
	for _, f := range env.foreignServices {
		key := ipvs.ServiceKey{Address: f.addr, Protocol: ipvs.Protocol(f.proto), Port: f.port}
		netmask := uint32(0xffffffff)
		if f.addr.Is6() {
			netmask = 128
		}
		if err := o.ipvs.AddService(ipvs.Service{ServiceKey: key, Scheduler: f.schedulerOrRR(), Netmask: netmask}); err != nil {
			return err
		}
		for _, d := range f.dests {
			dest := ipvs.Destination{DestinationKey: ipvs.DestinationKey{Address: d.to.Addr(), Port: d.to.Port()}, Weight: d.weight}
			if err := o.ipvs.AddDestination(key, dest); err != nil {
				return err
			}
		}
	}
	return nil
}

// state renders what ours left: IPVS table, kube-ipvs0, ipsets.
func (o *oursSide) state() ([]string, error) {
	var lines []string
	vss, err := o.ipvs.List()
	if err != nil {
		return nil, err
	}
	for _, vs := range vss {
		key := vsKey(string(vs.Protocol), vs.Address, vs.Port)
		lines = append(lines, vsLine(key, vs.Scheduler, vs.Flags, vs.Timeout))
		for _, d := range vs.Destinations {
			lines = append(lines, rsLine(key, netip.AddrPortFrom(d.Address, d.Port), d.Weight))
		}
	}
	bound, err := o.netdev.Addresses(dummyDevice)
	if err != nil {
		return nil, err
	}
	for _, a := range bound {
		if !a.IsLinkLocalUnicast() {
			lines = append(lines, boundLine(a))
		}
	}
	sets, err := o.ipset.List(nil)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		lines = append(lines, setLine(s.Name, string(s.Type)))
		for _, e := range s.Entries {
			lines = append(lines, memberLine(s.Name, e.String()))
		}
	}
	return lines, nil
}

// connIPVS reports connModel's connection counts on real servers, as
// upstream's side does, so both proxiers see the same traffic.
type connIPVS struct {
	*ipvs.Fake
	conns connModel
}

func (c *connIPVS) List() ([]ipvs.VirtualServer, error) {
	vss, err := c.Fake.List()
	for i := range vss {
		key := vsKey(string(vss[i].Protocol), vss[i].Address, vss[i].Port)
		c.fill(key, vss[i].Destinations)
	}
	return vss, err
}

func (c *connIPVS) ListFamily(ipv6 bool) ([]ipvs.VirtualServer, error) {
	vss, err := c.Fake.ListFamily(ipv6)
	for i := range vss {
		key := vsKey(string(vss[i].Protocol), vss[i].Address, vss[i].Port)
		c.fill(key, vss[i].Destinations)
	}
	return vss, err
}

func (c *connIPVS) Destinations(svc ipvs.ServiceKey) ([]ipvs.Destination, error) {
	ds, err := c.Fake.Destinations(svc)
	c.fill(vsKey(string(svc.Protocol), svc.Address, svc.Port), ds)
	return ds, err
}

func (c *connIPVS) fill(key string, ds []ipvs.Destination) {
	for i := range ds {
		ds[i].ActiveConn = c.conns.active(key, netip.AddrPortFrom(ds[i].Address, ds[i].Port))
		ds[i].InactiveConn = 0
	}
}

func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("parse CIDR %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
