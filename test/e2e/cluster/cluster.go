// Package cluster writes what the e2e scenarios need into the real API server with
// client-go, acting as kubelet, EndpointSlice and node-lifecycle controller: the Nodes
// (ready, or lost), Services and their EndpointSlices (endpoints ready, not ready,
// terminating, removed).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Namespace holds every object the scenarios create.
const Namespace = "e2e"

// Cluster is a client of the API server.
type Cluster struct {
	Client kubernetes.Interface
}

// Connect builds a client from a kubeconfig file.
func Connect(kubeconfig string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create client for %s: %w", cfg.Host, err)
	}
	return &Cluster{Client: client}, nil
}

// Prepare creates the namespace and removes Services and EndpointSlices left in it.
func (c *Cluster) Prepare(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	return c.Clear(ctx)
}

// Clear deletes every Service and EndpointSlice of the namespace (there is no
// controller to do it).
func (c *Cluster) Clear(ctx context.Context) error {
	var errs []error
	svcs, err := c.Client.CoreV1().Services(Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list services in %s: %w", Namespace, err)
	}
	for _, s := range svcs.Items {
		if err := c.Client.CoreV1().Services(Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete service %s/%s: %w", Namespace, s.Name, err))
		}
	}
	err = c.Client.DiscoveryV1().EndpointSlices(Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if err != nil {
		errs = append(errs, fmt.Errorf("delete endpointslices in %s: %w", Namespace, err))
	}
	return errors.Join(errs...)
}

// EnsureNode creates (or replaces) a Ready Node with its InternalIP and pod CIDR.
func (c *Cluster) EnsureNode(ctx context.Context, name string, ip netip.Addr, podCIDR string) error {
	nodes := c.Client.CoreV1().Nodes()
	if err := nodes.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	// Created with its status, as kubelet registers a Node: a Node without a Ready
	// condition counts as not Ready, even for a moment.
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip.String()},
				{Type: corev1.NodeHostName, Address: name},
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	if _, err := nodes.Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// CreateService creates svc in the namespace and returns it as stored (with its
// cluster IP and node ports).
func (c *Cluster) CreateService(ctx context.Context, svc *corev1.Service) (*corev1.Service, error) {
	svc.Namespace = Namespace
	created, err := c.Client.CoreV1().Services(Namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create service %s/%s: %w", Namespace, svc.Name, err)
	}
	return created, nil
}

// SetLoadBalancerIngress writes the service's load-balancer status (what a cloud
// controller would do).
func (c *Cluster) SetLoadBalancerIngress(ctx context.Context, svc *corev1.Service, ip netip.Addr) (*corev1.Service, error) {
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
	updated, err := c.Client.CoreV1().Services(Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set load-balancer ingress %s of %s/%s: %w", ip, Namespace, svc.Name, err)
	}
	return updated, nil
}

// DeleteService deletes a service of the namespace.
func (c *Cluster) DeleteService(ctx context.Context, name string) error {
	if err := c.Client.CoreV1().Services(Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete service %s/%s: %w", Namespace, name, err)
	}
	return nil
}

// labelFor is the label that ties an EndpointSlice to its Service.
func labelFor(service string) map[string]string {
	return map[string]string{discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "e2e-driver"}
}
