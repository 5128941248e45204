package doctor

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Labels and annotations the proxier honours.
const (
	// labelServiceProxyName marks Services another proxy handles.
	labelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// annotationTerminationPolicy is pkg/proxy/ipvs's per-Service policy.
	annotationTerminationPolicy = "ipvs-proxy.kubernetes.io/termination-policy"
	policyGraceful              = "graceful"
)

// servicePortRef is one port of one Service.
type servicePortRef struct {
	namespace, name string
	port            v1.ServicePort
}

// String gives "namespace/name:port-name" (or the port number when unnamed).
func (r servicePortRef) String() string {
	if r.port.Name != "" {
		return fmt.Sprintf("%s/%s:%s", r.namespace, r.name, r.port.Name)
	}
	return fmt.Sprintf("%s/%s:%d", r.namespace, r.name, r.port.Port)
}

// nodePortKey is a node port of one protocol.
type nodePortKey struct {
	protocol ipvs.Protocol
	port     uint16
}

// endpointsKey selects the endpoints of one Service port.
type endpointsKey struct {
	namespace, service, portName string
	protocol                     v1.Protocol
}

// endpointState is what the EndpointSlices say about one endpoint address
// and port; seen in several slices, the most usable state wins.
type endpointState struct {
	ready, serving, terminating bool
}

// clusterIndex answers the diagnosis's questions about the Services.
type clusterIndex struct {
	// byVIP maps cluster, external and load-balancer IP ports to Service ports.
	byVIP      map[ipvs.ServiceKey][]servicePortRef
	byNodePort map[nodePortKey][]servicePortRef
	// serviceAddrs are every cluster, external and load-balancer IP.
	serviceAddrs map[netip.Addr]bool
	// clusterIPs are the cluster IP ports the proxier must program.
	clusterIPs map[ipvs.ServiceKey]servicePortRef
	endpoints  map[endpointsKey]map[ipvs.DestinationKey]endpointState
	// gracefulServices counts Services annotated with the graceful policy.
	gracefulServices int
}

func newClusterIndex(c *Cluster) *clusterIndex {
	idx := &clusterIndex{
		byVIP: map[ipvs.ServiceKey][]servicePortRef{}, byNodePort: map[nodePortKey][]servicePortRef{},
		serviceAddrs: map[netip.Addr]bool{}, clusterIPs: map[ipvs.ServiceKey]servicePortRef{},
		endpoints: map[endpointsKey]map[ipvs.DestinationKey]endpointState{},
	}
	for i := range c.Services {
		idx.addService(&c.Services[i])
	}
	for i := range c.EndpointSlices {
		idx.addSlice(&c.EndpointSlices[i])
	}
	return idx
}

// proxied tells the Services the proxier programs.
func proxied(svc *v1.Service) bool {
	_, otherProxy := svc.Labels[labelServiceProxyName]
	return !otherProxy && svc.Spec.Type != v1.ServiceTypeExternalName
}

func (idx *clusterIndex) addService(svc *v1.Service) {
	if !proxied(svc) {
		return
	}
	if svc.Annotations[annotationTerminationPolicy] == policyGraceful {
		idx.gracefulServices++
	}
	clusterIPs := parseAddrs(clusterIPsOf(svc))
	vips := append(append(clusterIPs, parseAddrs(svc.Spec.ExternalIPs)...), loadBalancerIPs(svc)...)
	for _, a := range vips {
		idx.serviceAddrs[a] = true
	}
	for _, port := range svc.Spec.Ports {
		if port.Protocol == "" {
			port.Protocol = v1.ProtocolTCP // the API's default
		}
		ref := servicePortRef{namespace: svc.Namespace, name: svc.Name, port: port}
		proto := ipvs.Protocol(port.Protocol)
		if !validPort(port.Port) {
			continue
		}
		for _, a := range vips {
			key := ipvs.ServiceKey{Address: a, Protocol: proto, Port: uint16(port.Port)}
			idx.byVIP[key] = append(idx.byVIP[key], ref)
		}
		for _, a := range clusterIPs {
			idx.clusterIPs[ipvs.ServiceKey{Address: a, Protocol: proto, Port: uint16(port.Port)}] = ref
		}
		if validPort(port.NodePort) {
			key := nodePortKey{protocol: proto, port: uint16(port.NodePort)}
			idx.byNodePort[key] = append(idx.byNodePort[key], ref)
		}
	}
}

func validPort(p int32) bool { return p > 0 && p <= 65535 }

// clusterIPsOf returns ClusterIPs, or ClusterIP for objects written before
// dual-stack; "None" (headless) does not parse and is dropped later.
func clusterIPsOf(svc *v1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	return []string{svc.Spec.ClusterIP}
}

func loadBalancerIPs(svc *v1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IPMode != nil && *ing.IPMode == v1.LoadBalancerIPModeProxy {
			continue // the load balancer proxies: the node does not see this IP
		}
		out = append(out, parseAddrs([]string{ing.IP})...)
	}
	return out
}

// parseAddrs keeps the strings that are IP addresses, IPv4-in-IPv6 folded.
func parseAddrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func (idx *clusterIndex) addSlice(s *discovery.EndpointSlice) {
	service := s.Labels[discovery.LabelServiceName]
	if service == "" {
		return
	}
	for _, port := range s.Ports {
		if port.Port == nil || !validPort(*port.Port) {
			continue
		}
		key := endpointsKey{namespace: s.Namespace, service: service, portName: deref(port.Name), protocol: v1.ProtocolTCP}
		if port.Protocol != nil {
			key.protocol = *port.Protocol
		}
		if idx.endpoints[key] == nil {
			idx.endpoints[key] = map[ipvs.DestinationKey]endpointState{}
		}
		for _, ep := range s.Endpoints {
			idx.addEndpoint(key, ep, uint16(*port.Port))
		}
	}
}

func (idx *clusterIndex) addEndpoint(key endpointsKey, ep discovery.Endpoint, port uint16) {
	// Absent conditions mean ready and serving (the API's documented default).
	state := endpointState{
		ready: derefOr(ep.Conditions.Ready, true), terminating: derefOr(ep.Conditions.Terminating, false),
	}
	state.serving = derefOr(ep.Conditions.Serving, state.ready)
	for _, a := range parseAddrs(ep.Addresses) {
		dst := ipvs.DestinationKey{Address: a, Port: port}
		old, seen := idx.endpoints[key][dst]
		if seen && (old.serving || !state.serving) {
			continue
		}
		idx.endpoints[key][dst] = state
	}
}

// lookup finds the Service ports a virtual server belongs to.
func (idx *clusterIndex) lookup(k ipvs.ServiceKey) []servicePortRef {
	if refs := idx.byVIP[k]; len(refs) > 0 {
		return refs
	}
	return idx.byNodePort[nodePortKey{protocol: k.Protocol, port: k.Port}]
}

// endpoint finds a real server among the endpoints of the Service ports;
// found is false when none of them has it.
func (idx *clusterIndex) endpoint(refs []servicePortRef, dst ipvs.DestinationKey) (state endpointState, found bool) {
	for _, ref := range refs {
		key := endpointsKey{namespace: ref.namespace, service: ref.name, portName: ref.port.Name, protocol: ref.port.Protocol}
		if st, ok := idx.endpoints[key][dst]; ok && (!found || st.serving) {
			state, found = st, true
		}
	}
	return state, found
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefOr(b *bool, otherwise bool) bool {
	if b == nil {
		return otherwise
	}
	return *b
}

func refNames(refs []servicePortRef) string {
	s := ""
	for i, r := range refs {
		if i > 0 {
			s += ", "
		}
		s += r.String()
	}
	return s
}
