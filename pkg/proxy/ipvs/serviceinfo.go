package ipvs

import (
	"fmt"
	"net"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Termination policies for the real server of an endpoint that stops being used.
const (
	PolicyGraceful  = "graceful"
	PolicyImmediate = "immediate"
)

// servicePort is upstream's service port plus what we derive from the
// Service object once, when it changes: its termination policy override and
// whether it is usable at all. A valid port without an override is kept as
// upstream's alone (one 48-byte object fewer per port; see portSettings).
type servicePort struct {
	*proxy.BaseServicePortInfo
	// policy is PolicyGraceful, PolicyImmediate or "" (the gate decides).
	policy string
	// invalid says why the port cannot be programmed ("" when valid).
	invalid string
}

// newServicePort is the ServiceChangeTracker's constructor hook: it runs when
// a Service changes, so per-object validation and reporting happen once per
// change, not once per sync.
func newServicePort(port *v1.ServicePort, svc *v1.Service, base *proxy.BaseServicePortInfo) proxy.ServicePort {
	sp := &servicePort{BaseServicePortInfo: base}
	switch p := svc.Annotations[TerminationPolicyAnnotation]; p {
	case "", PolicyGraceful, PolicyImmediate:
		sp.policy = p
	default:
		sp.policy = ""
	}
	sp.invalid = validateServicePort(base)
	if sp.policy == "" && sp.invalid == "" {
		return base
	}
	return sp
}

// portSettings are a service port's termination policy override and why
// it is invalid ("" for none); ok is false for a port not made by
// newServicePort.
func portSettings(port proxy.ServicePort) (policy, invalid string, ok bool) {
	switch sp := port.(type) {
	case *servicePort:
		return sp.policy, sp.invalid, true
	case *proxy.BaseServicePortInfo:
		return "", "", true
	}
	return "", "", false
}

func validateServicePort(sp proxy.ServicePort) string {
	switch ipvs.Protocol(sp.Protocol()) {
	case ipvs.TCP, ipvs.UDP, ipvs.SCTP:
	default:
		return fmt.Sprintf("unsupported protocol %q", sp.Protocol())
	}
	if sp.Port() < 1 || sp.Port() > 65535 {
		return fmt.Sprintf("port %d out of range", sp.Port())
	}
	if sp.NodePort() < 0 || sp.NodePort() > 65535 {
		return fmt.Sprintf("nodePort %d out of range", sp.NodePort())
	}
	if a, ok := addrFromIP(sp.ClusterIP()); !ok || !routableUnicast(a) {
		return fmt.Sprintf("unusable cluster IP %v", sp.ClusterIP())
	}
	return ""
}

// endpointProblem says why an endpoint cannot be programmed ("" when it
// can). Endpoints keep no parsed address (see endpoint): a netip.Addr
// would cost 24 bytes per endpoint of the cluster, while parsing again
// when a contribution is built costs 30 ns.
func endpointProblem(e proxy.Endpoint) string {
	addr, err := netip.ParseAddr(e.IP())
	switch {
	case err != nil:
		return fmt.Sprintf("unparsable IP %q", e.IP())
	case e.Port() < 1 || e.Port() > 65535:
		return fmt.Sprintf("port %d out of range", e.Port())
	case !routableUnicast(addr.Unmap()):
		return fmt.Sprintf("IP %s is not a unicast address", addr)
	}
	return ""
}

// endpointAddr is the address of an endpoint endpointProblem accepted.
func endpointAddr(e proxy.Endpoint) netip.Addr {
	addr, _ := netip.ParseAddr(e.IP())
	return addr.Unmap()
}

// routableUnicast rejects what the kernel refuses as a virtual or real
// server address (EINVAL), so one bad object cannot fail every sync.
func routableUnicast(a netip.Addr) bool {
	zeroNet := a.Is4() && a.As4()[0] == 0
	broadcast := a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
	return a.IsValid() && !zeroNet && !broadcast && !a.IsMulticast() && !a.IsUnspecified()
}

// addrFromIP converts a net.IP, folding IPv4-in-IPv6 to IPv4.
func addrFromIP(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
