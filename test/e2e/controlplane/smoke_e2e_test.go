//go:build e2e

package controlplane

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const wantVersion = "v1.37.2"

func newClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	path := os.Getenv("CP_KUBECONFIG")
	if path == "" {
		t.Skip("CP_KUBECONFIG is not set; run hack/controlplane/smoke.sh")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create client for %s: %v", cfg.Host, err)
	}
	return client
}

func testService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "smoke", Namespace: metav1.NamespaceDefault},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
		},
	}
}

func testSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "smoke-1",
			Namespace: metav1.NamespaceDefault,
			Labels:    map[string]string{discoveryv1.LabelServiceName: "smoke"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.10"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.244.0.11"}, Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true),
			}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
}

// TestControlPlaneSmoke creates a Service and an EndpointSlice, reads them back the way
// a proxy's informers would (get, list by service-name label) and deletes them.
func TestControlPlaneSmoke(t *testing.T) {
	client := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	info, err := client.Discovery().ServerVersion()
	if err != nil || info.GitVersion != wantVersion {
		t.Fatalf("server version = %v, %v; want %s", info, err, wantVersion)
	}

	services := client.CoreV1().Services(metav1.NamespaceDefault)
	created, err := services.Create(ctx, testService(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service default/smoke: %v", err)
	}
	t.Cleanup(func() { _ = services.Delete(context.Background(), "smoke", metav1.DeleteOptions{}) })
	if created.Spec.ClusterIP == "" || created.Spec.ClusterIP[:6] != "10.96." {
		t.Errorf("service clusterIP = %q, want one in 10.96.0.0/16", created.Spec.ClusterIP)
	}

	slices := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	if _, err := slices.Create(ctx, testSlice(), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpointslice default/smoke-1: %v", err)
	}
	t.Cleanup(func() { _ = slices.Delete(context.Background(), "smoke-1", metav1.DeleteOptions{}) })

	got, err := services.Get(ctx, "smoke", metav1.GetOptions{})
	if err != nil || got.Spec.ClusterIP != created.Spec.ClusterIP || got.Spec.Ports[0].Port != 80 {
		t.Fatalf("get service default/smoke = %+v, %v", got, err)
	}
	list, err := slices.List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=smoke"})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list endpointslices of default/smoke = %v, %v; want 1", list, err)
	}
	eps := list.Items[0].Endpoints
	if len(eps) != 2 || eps[0].Addresses[0] != "10.244.0.10" || !*eps[1].Conditions.Terminating {
		t.Errorf("endpointslice default/smoke-1 endpoints = %+v", eps)
	}
	t.Logf("service default/smoke clusterIP %s, endpointslice with %d endpoints, server %s",
		got.Spec.ClusterIP, len(eps), info.GitVersion)
}
