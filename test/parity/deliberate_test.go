package parity

import (
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// A deliberate difference is one docs/parity.md lists with its reason: a
// rule that accepts exactly the diff lines it explains, given the node and
// the API state of the step.
type deliberate struct {
	// name is the heading of its section in docs/parity.md.
	name    string
	accepts func(x diffContext, line string) bool
}

// diffContext is what a rule may look at.
type diffContext struct {
	env     *environment
	cluster *cluster
	gate    bool
	// leftovers are upstream's weight-0 real servers at the last restart.
	leftovers map[string]bool
	// immediate are the virtual servers of Services with the immediate
	// policy, at this step or before (addImmediateVS): a deleted Service's
	// virtual server stays when its address is in excludeCIDRs.
	immediate map[string]bool
}

// deliberateDifferences are every accepted difference. The generated
// scenarios are compared with all of them; hand-written cases expect
// exact differences instead.
func deliberateDifferences() []deliberate {
	return []deliberate{
		{"Terminating real servers are deleted, not set to weight 0 (gate or annotation)", weightZeroByPolicy},
		{"Health check node port listed without node port addresses", healthCheckWithoutNodeAddresses},
		{"Weight-0 real servers left by an earlier run are deleted at start", restartLeftover},
	}
}

// weightZeroByPolicy: a real server upstream keeps at weight 0 that ours
// deleted, under the immediate policy of its Service.
func weightZeroByPolicy(x diffContext, line string) bool {
	rest, ok := strings.CutPrefix(line, "- vs ")
	if !ok || !strings.HasSuffix(rest, " weight=0") {
		return false
	}
	vs, _, ok := strings.Cut(rest, " to ")
	return ok && isImmediateVS(x.immediate, vs)
}

// restartLeftover: a real server at weight 0 when the proxiers restarted,
// which ours deleted on its first sync while upstream drains it again.
func restartLeftover(x diffContext, line string) bool {
	l, ok := strings.CutPrefix(line, "- ")
	return ok && x.leftovers[l]
}

// healthCheckWithoutNodeAddresses: ours lists a Service's health check node
// port in KUBE-HEALTH-CHECK-NODE-PORT even when no node address of the
// family matches nodePortAddresses; upstream's sync loop skips the rest of
// a port that has a node port then ("continue"), health check included.
func healthCheckWithoutNodeAddresses(x diffContext, line string) bool {
	family := v1.IPv4Protocol
	rest, ok := strings.CutPrefix(line, "+ set KUBE-HEALTH-CHECK-NODE-PORT has ")
	if !ok {
		family = v1.IPv6Protocol
		if rest, ok = strings.CutPrefix(line, "+ set KUBE-6-HEALTH-CHECK-NODE-PORT has "); !ok {
			return false
		}
	}
	if len(nodePortAddrs(x.env, family)) > 0 {
		return false
	}
	for _, svc := range x.cluster.services {
		if itoa(svc.Spec.HealthCheckNodePort) == rest && allPortsHaveNodePorts(svc) {
			return true
		}
	}
	return false
}

func allPortsHaveNodePorts(svc *v1.Service) bool {
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			return false
		}
	}
	return true
}

// nodePortAddrs are the node's addresses of a family that NodePorts listen
// on: those in nodePortAddresses' CIDRs of the family (all when it has
// none, or a zero CIDR), never loopback or IPv6 link-local.
func nodePortAddrs(env *environment, family v1.IPFamily) []netip.Addr {
	var cidrs []netip.Prefix
	for _, s := range env.nodePortAddresses {
		p := netip.MustParsePrefix(s)
		if p.Addr().Is4() == (family == v1.IPv4Protocol) {
			cidrs = append(cidrs, p)
		}
	}
	var out []netip.Addr
	for _, l := range env.links {
		for _, p := range l.addrs {
			a := p.Addr()
			if a.Is4() != (family == v1.IPv4Protocol) || a.IsLoopback() || a.IsLinkLocalUnicast() {
				continue
			}
			if len(cidrs) == 0 || anyContains(cidrs, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

func anyContains(cidrs []netip.Prefix, a netip.Addr) bool {
	for _, c := range cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}
