package app

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	netutils "k8s.io/utils/net"

	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

// detectNodeIPs picks the node IP of each family like upstream: a
// non-zero bindAddress wins for its family (which becomes primary); then
// the Node object's addresses; else loopback.
func detectNodeIPs(logger klog.Logger, fromNode []net.IP, bindAddress string) (v1.IPFamily, map[v1.IPFamily]net.IP) {
	primary := v1.IPv4Protocol
	ips := map[v1.IPFamily]net.IP{v1.IPv4Protocol: net.IPv4(127, 0, 0, 1), v1.IPv6Protocol: net.IPv6loopback}
	for i, ip := range fromNode {
		family := familyOf(ip)
		if i == 0 {
			primary = family
		}
		if i < 2 {
			ips[family] = ip
		}
	}
	if bindIP := netutils.ParseIPSloppy(bindAddress); bindIP != nil && !bindIP.IsUnspecified() {
		primary = familyOf(bindIP)
		ips[primary] = bindIP
	}
	if ips[primary].IsLoopback() {
		logger.Info("Can't determine this node's IP, assuming loopback; if this is incorrect, please set the --bind-address flag")
	}
	return primary, ips
}

func familyOf(ip net.IP) v1.IPFamily {
	if netutils.IsIPv4(ip) {
		return v1.IPv4Protocol
	}
	return v1.IPv6Protocol
}

// proxierConfig is the configuration one family's proxier runs with.
func proxierConfig(c *v1alpha1.KubeProxyConfiguration, family v1.IPFamily, nodeName string, nodeIPs map[v1.IPFamily]net.IP, podCIDRs []string, gate featuregate.FeatureGate) (ipvsproxy.Config, error) {
	nodeIP, _ := netip.AddrFromSlice(nodeIPs[family])
	exclude, err := familyPrefixes(c.IPVS.ExcludeCIDRs, family)
	if err != nil {
		return ipvsproxy.Config{}, fmt.Errorf("ipvs.excludeCIDRs: %w", err)
	}
	nodePorts, err := expandNodePortAddresses(c.NodePortAddresses, nodeIPs)
	if err != nil {
		return ipvsproxy.Config{}, fmt.Errorf("nodePortAddresses: %w", err)
	}
	return ipvsproxy.Config{
		IPFamily:             family,
		NodeName:             nodeName,
		NodeIP:               nodeIP.Unmap(),
		SyncPeriod:           c.IPVS.SyncPeriod.Duration,
		MinSyncPeriod:        c.IPVS.MinSyncPeriod.Duration,
		Scheduler:            c.IPVS.Scheduler,
		ExcludeCIDRs:         exclude,
		StrictARP:            c.IPVS.StrictARP,
		TCPTimeout:           c.IPVS.TCPTimeout.Duration,
		TCPFinTimeout:        c.IPVS.TCPFinTimeout.Duration,
		UDPTimeout:           c.IPVS.UDPTimeout.Duration,
		MasqueradeAll:        c.IPTables.MasqueradeAll,
		MasqueradeBit:        int(*c.IPTables.MasqueradeBit),
		LocalDetector:        localDetector(c, family, podCIDRs),
		NodePortAddresses:    nodePorts,
		ImmediateTermination: gate.Enabled(IPVSImmediateTermination),
		FinishGrace:          ipvsproxy.DefaultFinishGrace,
	}, nil
}

// familyPrefixes parses CIDRs (accepting upstream's leading zeros) and keeps
// those of family.
func familyPrefixes(cidrs []string, family v1.IPFamily) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		prefix, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		if (family == v1.IPv6Protocol) == prefix.Addr().Is6() {
			out = append(out, prefix)
		}
	}
	return out, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	_, ipNet, err := netutils.ParseCIDRSloppy(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: %w", s, err)
	}
	addr, _ := netip.AddrFromSlice(ipNet.IP)
	ones, _ := ipNet.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), nil
}

// expandNodePortAddresses replaces the keywords by CIDRs (upstream's
// rules: "primary" is the node IP of each family unless loopback) and
// writes every CIDR canonically; nil means all local addresses.
func expandNodePortAddresses(addrs []string, nodeIPs map[v1.IPFamily]net.IP) ([]string, error) {
	var out []string
	for _, addr := range addrs {
		switch addr {
		case nodePortPrimary:
			for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
				if ip := nodeIPs[family]; ip != nil && !ip.IsLoopback() {
					a, _ := netip.AddrFromSlice(ip)
					out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String())
				}
			}
		case nodePortLocalhost:
			out = append(out, "127.0.0.0/8", "::1/128")
		case nodePortAll:
			out = append(out, "0.0.0.0/0", "::/0")
		default:
			prefix, err := parseCIDR(addr)
			if err != nil {
				return nil, err
			}
			out = append(out, prefix.String())
		}
	}
	return out, nil
}

// localDetector tells pod traffic from other traffic (detectLocalMode).
func localDetector(c *v1alpha1.KubeProxyConfiguration, family v1.IPFamily, podCIDRs []string) proxyutil.LocalTrafficDetector {
	switch c.DetectLocalMode {
	case localModeClusterCIDR:
		return detectByCIDR(splitNonEmpty(c.ClusterCIDR), family)
	case localModeNodeCIDR:
		return detectByCIDR(podCIDRs, family)
	case localModeBridgeInterface:
		return proxyutil.NewDetectLocalByBridgeInterface(c.DetectLocal.BridgeInterface)
	case localModeInterfaceNamePrefix:
		return proxyutil.NewDetectLocalByInterfaceNamePrefix(c.DetectLocal.InterfaceNamePrefix)
	}
	return proxyutil.NewNoOpLocalDetector()
}

// detectByCIDR uses the first CIDR of family (upstream's choice).
func detectByCIDR(cidrs []string, family v1.IPFamily) proxyutil.LocalTrafficDetector {
	byFamily := proxyutil.MapCIDRsByIPFamily(cidrs)
	if len(byFamily[family]) == 0 {
		return proxyutil.NewNoOpLocalDetector()
	}
	return proxyutil.NewDetectLocalByCIDR(byFamily[family][0].String())
}

func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// checkFamilyConfig warns about settings that do not fit the node's IP
// family, and fails where upstream fails: local detection by CIDR with
// only CIDRs of the other family.
func checkFamilyConfig(logger klog.Logger, c *v1alpha1.KubeProxyConfiguration, primary v1.IPFamily, dualStack bool, podCIDRs []string) error {
	if len(c.NodePortAddresses) == 0 {
		logger.Info("Warning: nodePortAddresses is unset; NodePort connections will be accepted on all local IPs. Consider using `--nodeport-addresses primary`")
	}
	var errs []error
	if onlyOtherFamily(splitNonEmpty(c.ClusterCIDR), primary) {
		err := fmt.Errorf("clusterCIDR %q has no %s CIDR", c.ClusterCIDR, primary)
		if c.DetectLocalMode == localModeClusterCIDR && !dualStack {
			errs = append(errs, err)
		} else {
			logger.Info("Warning: kube-proxy configuration may be incorrect", "err", err)
		}
	}
	if onlyOtherFamily(podCIDRs, primary) {
		err := fmt.Errorf("node.spec.podCIDRs %v has no %s CIDR", podCIDRs, primary)
		if c.DetectLocalMode == localModeNodeCIDR {
			errs = append(errs, err)
		} else {
			logger.Info("Warning: kube-proxy configuration may be incorrect", "err", err)
		}
	}
	return errors.Join(errs...)
}

// onlyOtherFamily: cidrs is not empty and none of them is of family.
func onlyOtherFamily(cidrs []string, family v1.IPFamily) bool {
	return len(cidrs) > 0 && len(proxyutil.MapCIDRsByIPFamily(cidrs)[family]) == 0
}

// newServiceHealthServer serves healthCheckNodePorts of
// externalTrafficPolicy: Local Services on the node-port addresses.
func newServiceHealthServer(nodeName string, recorder events.EventRecorder, nodePortAddresses []string, health *healthcheck.ProxyHealthServer, family v1.IPFamily) healthcheck.ServiceHealthServer {
	addrs := proxyutil.NewNodePortAddresses(family, nodePortAddresses)
	if health == nil {
		return healthcheck.NewServiceHealthServer(nodeName, recorder, addrs, nil, family)
	}
	return healthcheck.NewServiceHealthServer(nodeName, recorder, addrs, health, family)
}
