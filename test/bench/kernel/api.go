package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
)

// newClient makes a client that is not rate limited (the loader writes
// thousands of objects).
func newClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("make client for %s: %w", kubeconfig, err)
	}
	return c, nil
}

// setEndpoints writes Service i's EndpointSlice with the given endpoints
// and returns when the write was sent (the start of the latency).
func setEndpoints(ctx context.Context, c kubernetes.Interface, i int, eps []netip.Addr) (time.Time, error) {
	slices := c.DiscoveryV1().EndpointSlices(cluster.Namespace)
	cur, err := slices.Get(ctx, cluster.SliceName(i), metav1.GetOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("get EndpointSlice %s: %w", cluster.SliceName(i), err)
	}
	next := cluster.Slice(i, eps)
	next.ResourceVersion = cur.ResourceVersion
	start := time.Now()
	if _, err := slices.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return start, fmt.Errorf("update EndpointSlice %s: %w", cluster.SliceName(i), err)
	}
	return start, nil
}
