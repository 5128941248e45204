package doctor

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// serviceKey parses "TCP 10.96.0.1:80".
func serviceKey(s string) ipvs.ServiceKey {
	proto, addrPort, _ := strings.Cut(s, " ")
	ap := netip.MustParseAddrPort(addrPort)
	return ipvs.ServiceKey{Address: ap.Addr(), Protocol: ipvs.Protocol(proto), Port: ap.Port()}
}

func destKey(s string) ipvs.DestinationKey {
	ap := netip.MustParseAddrPort(s)
	return ipvs.DestinationKey{Address: ap.Addr(), Port: ap.Port()}
}

// dest makes a real server "10.244.1.5:8080" with weight and connection counts.
func dest(s string, weight, active, inactive int) ipvs.Destination {
	return ipvs.Destination{DestinationKey: destKey(s), Weight: weight, ActiveConn: active, InactiveConn: inactive}
}

// vserver makes a virtual server "TCP 10.96.0.1:80" (rr) with real servers.
func vserver(key string, dests ...ipvs.Destination) ipvs.VirtualServer {
	k := serviceKey(key)
	mask := uint32(0xffffffff)
	if k.Address.Is6() {
		mask = 128
	}
	return ipvs.VirtualServer{Service: ipvs.Service{ServiceKey: k, Scheduler: "rr", Netmask: mask}, Destinations: dests}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// service makes a ClusterIP Service in namespace "ns" with TCP port 80
// named "http"; mutate adjusts it.
func service(name, clusterIP string, mutate ...func(*v1.Service)) v1.Service {
	s := v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mutate {
		m(&s)
	}
	return s
}

// endpoint conditions of a slice endpoint.
type ep struct {
	ip                          string
	ready, serving, terminating bool
}

func ready(ip string) ep       { return ep{ip: ip, ready: true, serving: true} }
func terminating(ip string) ep { return ep{ip: ip, serving: true, terminating: true} }
func gone(ip string) ep        { return ep{ip: ip, terminating: true} } // terminating, not serving

// slice makes the EndpointSlice of Service name, TCP port "http" = port.
func slice(name string, port int32, eps ...ep) discovery.EndpointSlice {
	s := discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-" + strconv.Itoa(int(port)),
			Labels: map[string]string{discovery.LabelServiceName: name}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{Addresses: []string{e.ip},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving),
				Terminating: ptr.To(e.terminating)}})
	}
	return s
}

func udpEntry(client, vip, endpoint string) conntrack.Entry {
	c, v, e := netip.MustParseAddrPort(client), netip.MustParseAddrPort(vip), netip.MustParseAddrPort(endpoint)
	return conntrack.Entry{Protocol: conntrack.ProtoUDP, OrigSrc: c.Addr(), OrigSrcPort: c.Port(),
		OrigDst: v.Addr(), OrigDstPort: v.Port(), ReplySrc: e.Addr(), ReplySrcPort: e.Port()}
}

// healthySysctls are what the proxier sets on a 6.1 kernel.
func healthySysctls() map[string]int {
	return map[string]int{SysctlConnReuseMode: 1, SysctlExpireNodestConn: 1, SysctlExpireQuiescent: 1, SysctlVSConntrack: 1}
}

// findingLines renders findings one per line for table comparisons:
// "severity kind object [service] [fix]".
func findingLines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		line := fmt.Sprintf("%s %s %s", f.Severity, f.Kind, f.Object)
		if f.Service != "" {
			line += " [" + f.Service + "]"
		}
		if f.Connections != nil {
			line += fmt.Sprintf(" conns=%d/%d", f.Connections.Active, f.Connections.Inactive)
		}
		if f.Repair != nil {
			line += " fix"
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func wantText(t *testing.T, what, got, want string) {
	t.Helper()
	got, want = strings.TrimSpace(got), strings.TrimSpace(dedent(want))
	if got != want {
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s", what, got, want)
	}
}

// dedent strips the leading tabs of a raw-string expectation.
func dedent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t")
	}
	return strings.Join(lines, "\n")
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
