package upstreamproxier

import (
	"context"
	"fmt"
	"net"

	v1 "k8s.io/api/core/v1"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	upstream "k8s.io/kubernetes/pkg/proxy/ipvs"
	ipsettest "k8s.io/kubernetes/pkg/proxy/ipvs/ipset/testing"
	ipvstest "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
)

// Node is upstream's fake kernel of one node, shared by its proxiers (one
// per family, and the ones a restart makes), with one call counter.
type Node struct {
	IPVS   *IPVS
	IPSet  *IPSet
	Sysctl *Sysctl
	Calls  *Calls
}

// NewNode makes an empty fake kernel; activeConns may be nil (no
// connections anywhere).
func NewNode(activeConns ActiveConnsFunc) *Node {
	calls := newCalls()
	return &Node{
		IPVS:   &IPVS{fake: ipvstest.NewFake(), activeConns: activeConns, calls: calls},
		IPSet:  &IPSet{Fake: ipsettest.NewFake(upstream.MinIPSetCheckVersion), calls: calls},
		Sysctl: &Sysctl{fake: sysctltest.NewFake(), calls: calls},
		Calls:  calls,
	}
}

// NewProxier makes upstream's proxier for one family on the node's fakes
// and a fresh iptables fake, with a no-op local traffic detector, no event
// recorder and no health server. It binds service addresses on the
// calling thread's kube-ipvs0 (see ResetLinks).
func (n *Node) NewProxier(ctx context.Context, cfg *kubeproxyconfig.KubeProxyConfiguration, family v1.IPFamily,
	nodeName string, nodeIP net.IP) (*upstream.Proxier, error) {
	ipt := iptablestest.NewFake()
	if family == v1.IPv6Protocol {
		ipt = iptablestest.NewIPv6Fake()
	}
	p, err := upstream.NewProxier(ctx, cfg, family, &IPTables{Interface: ipt, calls: n.Calls}, n.IPVS, n.IPSet, n.Sysctl,
		proxyutil.NewNoOpLocalDetector(), nodeName, nodeIP, nil, nil, false)
	if err != nil {
		return nil, fmt.Errorf("upstream NewProxier %s: %w", family, err)
	}
	return p, nil
}
