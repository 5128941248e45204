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
	// immediate are the virtual servers of Services with the immediate
	// policy at this step (addImmediateVS).
	immediate map[string]bool
	// retired are the real servers (rendered without " weight=0") a rule
	// accepted at an earlier step of this run and gate: ours deleted them
	// then, upstream keeps them at weight 0 until they drain (never, in
	// this test: connection counts stay), whatever their endpoint does next.
	retired map[string]bool
}

// deliberateDifferences are every accepted difference. The generated
// scenarios are compared with all of them; hand-written cases expect
// exact differences instead.
func deliberateDifferences() []deliberate {
	return []deliberate{
		{"Real servers of vanished or non-serving endpoints are deleted, not set to weight 0 (gate or annotation)", weightZeroByPolicy},
		{"Health check node port listed without node port addresses", healthCheckWithoutNodeAddresses},
	}
}

// weightZeroByPolicy: a real server upstream keeps at weight 0 that ours
// deleted, under the immediate policy of its Service, because its endpoint
// is going away: in no EndpointSlice of the Service, or terminating and no
// longer serving (the scenarios report no node as not Ready, so the
// lost-node rule never applies). Once accepted, the line stays accepted.
func weightZeroByPolicy(x diffContext, line string) bool {
	rest, ok := strings.CutPrefix(line, "- vs ")
	if !ok {
		return false
	}
	rs, ok := strings.CutSuffix(rest, " weight=0")
	if !ok {
		return false
	}
	if x.retired[rs] {
		return true
	}
	vs, dest, ok := strings.Cut(rs, " to ")
	if !ok || !isImmediateVS(x.immediate, vs) || !x.cluster.goingAway(vs, dest) {
		return false
	}
	x.retired[rs] = true
	return true
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
