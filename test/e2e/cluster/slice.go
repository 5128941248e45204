package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// State is an endpoint's condition.
type State int

// Endpoint states, as the EndpointSlice controller writes them.
const (
	Ready       State = iota // ready, serving
	Terminating              // not ready, serving, terminating
	// NotReady is a pod whose Ready condition is false and that is not being
	// deleted: a readiness probe failing, or every pod of a node the
	// node-lifecycle controller found unreachable (not ready, not serving,
	// not terminating).
	NotReady
)

// Endpoint is one pod behind a service.
type Endpoint struct {
	Pod   string
	IP    netip.Addr
	Node  string
	State State
}

// Port is one port of an EndpointSlice.
type Port struct {
	Name     string
	Protocol corev1.Protocol
	Port     int32
}

// Slice is the one EndpointSlice of a service.
type Slice struct {
	c   *Cluster
	obj *discoveryv1.EndpointSlice
}

// CreateSlice creates the EndpointSlice of service with eps.
func (c *Cluster) CreateSlice(ctx context.Context, service string, ports []Port, eps []Endpoint) (*Slice, error) {
	obj := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-e2e", Namespace: Namespace, Labels: labelFor(service),
			Annotations: triggeredNow()},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints(eps),
	}
	for _, p := range ports {
		obj.Ports = append(obj.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(p.Port)})
	}
	created, err := c.Client.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create endpointslice %s/%s: %w", Namespace, obj.Name, err)
	}
	return &Slice{c: c, obj: created}, nil
}

// Set replaces the slice's endpoints.
func (s *Slice) Set(ctx context.Context, eps []Endpoint) error {
	obj := s.obj.DeepCopy()
	obj.Endpoints = endpoints(eps)
	obj.Annotations = triggeredNow()
	updated, err := s.c.Client.DiscoveryV1().EndpointSlices(Namespace).Update(ctx, obj, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update endpointslice %s/%s: %w", Namespace, obj.Name, err)
	}
	s.obj = updated
	return nil
}

// triggeredNow is the annotation the EndpointSlice controller sets: when the
// change that caused this write happened (proxiers measure network
// programming latency from it).
func triggeredNow() map[string]string {
	return map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}
}

func endpoints(eps []Endpoint) []discoveryv1.Endpoint {
	out := make([]discoveryv1.Endpoint, 0, len(eps))
	for _, e := range eps {
		out = append(out, discoveryv1.Endpoint{
			Addresses: []string{e.IP.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(e.State == Ready), Serving: ptr.To(e.State != NotReady), Terminating: ptr.To(e.State == Terminating),
			},
			NodeName:  ptr.To(e.Node),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: Namespace, Name: e.Pod},
		})
	}
	return out
}
