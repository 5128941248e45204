// Package fakes measures one proxier's syncs on fake kernels: ours on our
// fakes (optionally with the real netdev), upstream's IPVS proxier on its
// fakes, upstream's nftables proxier on knftables' Fake. It must
// run in a network namespace of its own (upstream binds service addresses
// on the namespace's kube-ipvs0 through netlink it cannot be kept from).
package fakes

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"k8s.io/utils/ptr"

	"github.com/vishvananda/netlink"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	ourproxier "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

const (
	nodeName = "node-a"
	// syncPeriod is long enough that no periodic full sync of ours falls
	// into a measurement.
	syncPeriod = time.Hour
)

var nodeIP = netip.MustParsePrefix("192.168.0.10/24")

// side is one proxier on its fake kernel.
type side struct {
	provider proxy.Provider
	// kernel is the fake kernel, kept when the proxier is dropped.
	kernel any
	// calls counts kernel calls since the last resetCalls.
	calls      func() int
	resetCalls func()
	// operations, when set, counts the operations inside those calls
	// (nftables: the commands of its transactions), and inFake what the
	// calls cost inside the fake; both reset with the calls.
	operations func() int
	inFake     func() upstreamproxier.InFake
}

func newSide(ctx context.Context, name string) (*side, error) {
	switch name {
	case results.Ours:
		return newOurs(ctx, netdev.NewFake())
	case results.OursNetlink:
		return newOurs(ctx, bridgeDummy{netdev.New()})
	case results.Upstream:
		return newUpstream(ctx)
	case results.UpstreamNFTables:
		return newUpstreamNFTables(ctx)
	}
	return nil, fmt.Errorf("unknown side %q", name)
}

func newUpstream(ctx context.Context) (*side, error) {
	node := upstreamproxier.NewNode(nil)
	cfg := &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod: metav1.Duration{Duration: syncPeriod},
		IPTables:   kubeproxyconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14)},
		IPVS:       kubeproxyconfig.KubeProxyIPVSConfiguration{Scheduler: "rr"},
	}
	p, err := node.NewProxier(ctx, cfg, v1.IPv4Protocol, nodeName, net.IP(nodeIP.Addr().AsSlice()))
	if err != nil {
		return nil, err
	}
	return &side{provider: p, kernel: node, calls: node.Calls.Total, resetCalls: node.Calls.Reset}, nil
}

// newUpstreamNFTables is upstream's nftables proxier on knftables' Fake:
// its kernel calls are the fake's transactions (Run) and reads (List*),
// its operations the commands inside the transactions.
func newUpstreamNFTables(ctx context.Context) (*side, error) {
	nft := upstreamproxier.NewNFTables(v1.IPv4Protocol)
	cfg := &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod: metav1.Duration{Duration: syncPeriod},
		NFTables:   kubeproxyconfig.KubeProxyNFTablesConfiguration{MasqueradeBit: ptr.To[int32](14)},
	}
	p, err := upstreamproxier.NewNFTablesProxier(ctx, cfg, v1.IPv4Protocol, nodeName, net.IP(nodeIP.Addr().AsSlice()), nft)
	if err != nil {
		return nil, err
	}
	return &side{
		provider: p, kernel: nft, calls: nft.Calls.Total, operations: nft.Operations, inFake: nft.InFake,
		resetCalls: func() { nft.Calls.Reset(); nft.ResetOperations() },
	}, nil
}

// ourKernel is our fake kernel; netdev may be the real one.
type ourKernel struct {
	ipvs      *ipvs.Fake
	ipset     *ipset.Fake
	iptables  *iptables.Fake
	netdev    *countingNetdev
	conntrack *conntrack.Fake
	sysctl    *sysctl.Fake
}

func (k *ourKernel) callMaps() []map[string]int {
	return []map[string]int{k.ipvs.Calls, k.ipset.Calls, k.iptables.Calls, k.conntrack.Calls, k.sysctl.Calls, k.netdev.calls}
}

func newOurs(ctx context.Context, nd netdev.Interface) (*side, error) {
	k := &ourKernel{
		ipvs: ipvs.NewFake(), ipset: ipset.NewFake(), iptables: iptables.NewFake(false),
		netdev: &countingNetdev{Interface: nd, calls: map[string]int{}}, conntrack: conntrack.NewFake(),
		sysctl: sysctl.NewFake(map[string]int{
			"net/ipv4/vs/conntrack": 0, "net/ipv4/vs/conn_reuse_mode": 1, "net/ipv4/vs/expire_nodest_conn": 0,
			"net/ipv4/vs/expire_quiescent_template": 0, "net/ipv4/ip_forward": 0,
		}),
	}
	if fake, ok := nd.(*netdev.Fake); ok {
		if err := fake.AddDevice("lo", netip.MustParseAddr("127.0.0.1")); err != nil {
			return nil, err
		}
		if err := fake.AddDevice("eth0", nodeIP.Addr()); err != nil {
			return nil, err
		}
	}
	cfg := ourproxier.Config{
		IPFamily: v1.IPv4Protocol, NodeName: nodeName, NodeIP: nodeIP.Addr(), SyncPeriod: syncPeriod,
		MasqueradeBit: 14, LocalDetector: proxyutil.NewNoOpLocalDetector(),
	}
	m := ourproxier.NewMetrics()
	m.Register(metrics.NewKubeRegistry())
	deps := ourproxier.Deps{
		IPVS: k.ipvs, IPSet: k.ipset, IPTables: k.iptables, NetDev: k.netdev, Conntrack: k.conntrack,
		Sysctl: k.sysctl, KernelVersion: "6.1.0-56-amd64", Metrics: m,
	}
	p, err := ourproxier.NewProxier(ctx, cfg, deps)
	if err != nil {
		return nil, fmt.Errorf("our NewProxier: %w", err)
	}
	s := &side{provider: p, kernel: k}
	s.calls = func() int {
		n := 0
		for _, m := range k.callMaps() {
			for _, c := range m {
				n += c
			}
		}
		return n
	}
	s.resetCalls = func() {
		for _, m := range k.callMaps() {
			clear(m)
		}
	}
	return s, nil
}

// countingNetdev counts the calls of a netdev, like our fakes do.
type countingNetdev struct {
	netdev.Interface
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingNetdev) count(method string) {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
}

func (c *countingNetdev) EnsureDummy(name string) error {
	c.count("EnsureDummy")
	return c.Interface.EnsureDummy(name)
}

func (c *countingNetdev) DeleteDummy(name string) error {
	c.count("DeleteDummy")
	return c.Interface.DeleteDummy(name)
}

func (c *countingNetdev) Addresses(name string) ([]netip.Addr, error) {
	c.count("Addresses")
	return c.Interface.Addresses(name)
}

func (c *countingNetdev) AddAddress(name string, addr netip.Addr) error {
	c.count("AddAddress")
	return c.Interface.AddAddress(name, addr)
}

func (c *countingNetdev) DeleteAddress(name string, addr netip.Addr) error {
	c.count("DeleteAddress")
	return c.Interface.DeleteAddress(name, addr)
}

func (c *countingNetdev) LocalAddresses(exclude ...string) ([]netip.Addr, error) {
	c.count("LocalAddresses")
	return c.Interface.LocalAddresses(exclude...)
}

// bridgeDummy is the real netdev accepting the kube-ipvs0 that
// upstreamproxier.ResetLinks made, a bridge where the kernel has no dummy
// driver (upstream's proxier accepts it too).
type bridgeDummy struct{ netdev.Interface }

func (b bridgeDummy) EnsureDummy(name string) error {
	if _, err := netlink.LinkByName(name); err != nil {
		return fmt.Errorf("ensure device %s: %w", name, err)
	}
	return nil
}
