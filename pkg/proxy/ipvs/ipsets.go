package ipvs

import (
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
)

// The ipsets the iptables rules match. Names and types are upstream's, so
// that a node can move between upstream kube-proxy and ipvs-proxy.
const (
	setLoopBack         = "KUBE-LOOP-BACK"
	setClusterIP        = "KUBE-CLUSTER-IP"
	setExternalIP       = "KUBE-EXTERNAL-IP"
	setExternalIPLocal  = "KUBE-EXTERNAL-IP-LOCAL"
	setLoadBalancer     = "KUBE-LOAD-BALANCER"
	setLoadBalancerLoc  = "KUBE-LOAD-BALANCER-LOCAL"
	setLoadBalancerFW   = "KUBE-LOAD-BALANCER-FW"
	setLBSourceIP       = "KUBE-LOAD-BALANCER-SOURCE-IP"
	setLBSourceCIDR     = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	setNodePortTCP      = "KUBE-NODE-PORT-TCP"
	setNodePortLocalTCP = "KUBE-NODE-PORT-LOCAL-TCP"
	setNodePortUDP      = "KUBE-NODE-PORT-UDP"
	setNodePortLocalUDP = "KUBE-NODE-PORT-LOCAL-UDP"
	setNodePortSCTP     = "KUBE-NODE-PORT-SCTP-HASH"
	setNodePortLocSCTP  = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	setHealthCheckPort  = "KUBE-HEALTH-CHECK-NODE-PORT"
	setIPVSAddresses    = "KUBE-IPVS-IPS"
)

// setDefinition is one set we own, by its IPv4 name.
type setDefinition struct {
	name    string
	typ     ipset.Type
	comment string
}

// setDefinitions lists every set in a fixed order. Callers only read it:
// it is one table, not a new list each call (every sync asks for it).
func setDefinitions() []setDefinition { return ownSets[:] }

var ownSets = [...]setDefinition{
	{setLoopBack, ipset.HashIPPortIP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
	{setClusterIP, ipset.HashIPPort, "Kubernetes service cluster ip + port for masquerade purpose"},
	{setExternalIP, ipset.HashIPPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
	{setExternalIPLocal, ipset.HashIPPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
	{setLoadBalancer, ipset.HashIPPort, "Kubernetes service lb portal"},
	{setLoadBalancerFW, ipset.HashIPPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
	{setLoadBalancerLoc, ipset.HashIPPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
	{setLBSourceIP, ipset.HashIPPortIP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
	{setLBSourceCIDR, ipset.HashIPPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
	{setNodePortTCP, ipset.BitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
	{setNodePortLocalTCP, ipset.BitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
	{setNodePortUDP, ipset.BitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
	{setNodePortLocalUDP, ipset.BitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
	{setNodePortSCTP, ipset.HashIPPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
	{setNodePortLocSCTP, ipset.HashIPPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
	{setHealthCheckPort, ipset.BitmapPort, "Kubernetes health check node port"},
	{setIPVSAddresses, ipset.HashIP, "Addresses on the ipvs interface"},
}

// setName is a set's name in the kernel for a family: IPv6 sets are named
// KUBE-6-..., cut to ipset's 31 characters, as upstream does.
func setName(name string, family v1.IPFamily) string {
	if family != v1.IPv6Protocol {
		return name
	}
	name = strings.Replace(name, "KUBE-", "KUBE-6-", 1)
	if len(name) > 31 {
		name = name[:31]
	}
	return name
}

// kernelSet is the header of a set for a family.
func kernelSet(d setDefinition, family v1.IPFamily) ipset.Set {
	s := ipset.Set{Name: setName(d.name, family), Type: d.typ, Family: ipset.Inet, Comment: d.comment}
	if family == v1.IPv6Protocol {
		s.Family = ipset.Inet6
	}
	if d.typ == ipset.BitmapPort {
		s.Family = "" // bitmap:port sets have no family; the kernel reports none
		s.PortRange = "0-65535"
	}
	return s
}

// entryLess orders entries for stable output.
func entryLess(a, b ipset.Entry) bool {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c < 0
	}
	if a.Protocol != b.Protocol {
		return a.Protocol < b.Protocol
	}
	if a.Port != b.Port {
		return a.Port < b.Port
	}
	if c := a.IP2.Compare(b.IP2); c != 0 {
		return c < 0
	}
	return a.Net.String() < b.Net.String()
}
