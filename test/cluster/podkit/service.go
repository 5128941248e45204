package podkit

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// ServerPorts are a Service's ports to the test server: HTTP on 80 and the TCP echo port.
func ServerPorts() []corev1.ServicePort {
	return []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromInt32(HTTPPort)},
		{Name: "echo", Port: EchoPort, TargetPort: intstr.FromInt32(EchoPort)},
	}
}

// CreateService creates the ClusterIP Service name in ns, selecting the pods labelled
// app=name, with these ports; the test fails if it cannot.
func CreateService(t testing.TB, client kubernetes.Interface, ns, name string, ports []corev1.ServicePort) *corev1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
	return svc
}
