// Package cluster makes the Services and EndpointSlices of the benchmark
// clusters: n ClusterIP Services with one TCP port and 10 ready endpoints
// each, on other nodes, with addresses that never collide.
package cluster

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Namespace holds every benchmark object.
const Namespace = "bench"

// EndpointsPerService is how many endpoints each Service starts with.
const EndpointsPerService = 10

// MaxServices is how many Services the address plan holds.
const MaxServices = 60000

// Port is the service port; TargetPort the endpoints'.
const (
	Port       = 80
	TargetPort = 8080
	portName   = "http"
)

// Service i's address: 10.96.1.0 and up, inside the API server's service
// CIDR 10.96.0.0/16 (hack/controlplane), clear of 10.96.0.1.
var (
	serviceBase = netip.MustParseAddr("10.96.1.0")
	// Endpoints: 10.128.0.0/10 for the initial ones (16 slots per
	// Service), 10.192.0.0/10 for replacements (64 per Service).
	endpointBase    = netip.MustParseAddr("10.128.0.0")
	replacementBase = netip.MustParseAddr("10.192.0.0")
)

// ServiceName is Service i's name.
func ServiceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// SliceName is the name of Service i's EndpointSlice.
func SliceName(i int) string { return ServiceName(i) + "-0" }

// ClusterIP is Service i's cluster IP.
func ClusterIP(i int) netip.Addr { return add(serviceBase, i) }

// Endpoint is the j-th initial endpoint address of Service i.
func Endpoint(i, j int) netip.Addr { return add(endpointBase, i*16+j) }

// Replacement is the n-th replacement endpoint address of Service i
// (n < 64), for changes that swap an endpoint for a new one.
func Replacement(i, n int) netip.Addr { return add(replacementBase, i*64+n%64) }

// InitialEndpoints are Service i's starting endpoint addresses.
func InitialEndpoints(i int) []netip.Addr {
	out := make([]netip.Addr, EndpointsPerService)
	for j := range out {
		out[j] = Endpoint(i, j)
	}
	return out
}

// Service is Service i: ClusterIP, TCP port 80 named "http" to 8080.
func Service(i int) *v1.Service {
	ip := ClusterIP(i).String()
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: ServiceName(i)},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports: []v1.ServicePort{{Name: portName, Protocol: v1.ProtocolTCP, Port: Port,
				TargetPort: intstr.FromInt32(TargetPort)}},
		},
	}
}

// Slice is Service i's EndpointSlice with the given ready endpoints, all
// on node "node-b".
func Slice(i int, endpoints []netip.Addr) *discovery.EndpointSlice {
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: SliceName(i),
			Labels: map[string]string{discovery.LabelServiceName: ServiceName(i)}},
		AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{{Name: ptr.To(portName), Port: ptr.To[int32](TargetPort),
			Protocol: ptr.To(v1.ProtocolTCP)}},
	}
	for _, a := range endpoints {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses:  []string{a.String()},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To("node-b"),
		})
	}
	return s
}

// add returns a + n for IPv4 addresses.
func add(a netip.Addr, n int) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
