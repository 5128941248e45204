// Package kubeclient connects the cluster tests to the host control plane that
// hack/cluster/controlplane-up.sh starts (kube-apiserver, kube-controller-manager,
// kube-scheduler v1.37.2) and waits for what its controllers do. The tests skip when
// $CLUSTER_ADMIN_KUBECONFIG is not set; hack/cluster/test-host.sh sets it.
package kubeclient

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Env returns environment variable name, skipping the test when it is not set.
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skipf("%s is not set; run hack/cluster/test-host.sh", name)
	}
	return v
}

// New is a client for the cluster's admin kubeconfig ($CLUSTER_ADMIN_KUBECONFIG).
func New(t testing.TB) kubernetes.Interface {
	t.Helper()
	path := Env(t, "CLUSTER_ADMIN_KUBECONFIG")
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

// Eventually polls cond every 200 ms until it returns true, and fails the test naming
// what it waited for (and cond's last error) after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true,
		func(ctx context.Context) (bool, error) {
			done, err := cond(ctx)
			if err != nil {
				last = err
				return false, nil
			}
			return done, nil
		})
	if err != nil {
		t.Fatalf("waiting %v for %s: %v (last error: %v)", timeout, what, err, last)
	}
}

// Namespace creates a namespace named after prefix, deleted when the test ends, and
// waits for its default ServiceAccount (the serviceaccount controller's: pods cannot be
// created before it exists).
func Namespace(t testing.TB, client kubernetes.Interface, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s-*: %v", prefix, err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	Eventually(t, 30*time.Second, "serviceaccount "+ns.Name+"/default", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	return ns.Name
}
