package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
)

// NodeIP is the node's address in the VM (qemu user networking).
const NodeIP = "10.0.2.15"

// loadWorkers is how many API writes run at once.
const loadWorkers = 16

// Load makes the API server hold exactly services 0..n-1 of the benchmark
// cluster with their initial EndpointSlices, the node and the namespace.
func Load(ctx context.Context, kubeconfig string, n int, progress func(string, ...any)) error {
	c, err := newClient(kubeconfig)
	if err != nil {
		return err
	}
	if err := ensureNamespaceAndNode(ctx, c); err != nil {
		return err
	}
	have, intact, err := existing(ctx, c)
	if err != nil {
		return err
	}
	progress("API server holds %d benchmark services; want %d", len(have), n)
	var todo []func() error
	for i := range n {
		switch {
		case !have[cluster.ServiceName(i)]:
			todo = append(todo, func() error { return create(ctx, c, i) })
		case !intact[cluster.SliceName(i)]: // left changed by an interrupted run
			todo = append(todo, func() error {
				_, err := setEndpoints(ctx, c, i, cluster.InitialEndpoints(i))
				return err
			})
		}
	}
	for name := range have {
		if !isWanted(name, n) {
			todo = append(todo, func() error { return remove(ctx, c, name) })
		}
	}
	return parallel(todo)
}

func ensureNamespaceAndNode(ctx context.Context, c kubernetes.Interface) error {
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cluster.Namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", cluster.Namespace, err)
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: NodeName},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: NodeIP}}},
	}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", NodeName, err)
	}
	return nil
}

// existing lists the benchmark's Services, and its EndpointSlices that
// hold their initial endpoints.
func existing(ctx context.Context, c kubernetes.Interface) (services, intact map[string]bool, err error) {
	list, err := c.CoreV1().Services(cluster.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	services = map[string]bool{}
	for _, s := range list.Items {
		services[s.Name] = true
	}
	slices, err := c.DiscoveryV1().EndpointSlices(cluster.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list EndpointSlices: %w", err)
	}
	intact = map[string]bool{}
	for _, s := range slices.Items {
		var i int
		if _, err := fmt.Sscanf(s.Name, "svc-%d-0", &i); err != nil || len(s.Endpoints) != cluster.EndpointsPerService {
			continue
		}
		intact[s.Name] = s.Endpoints[0].Addresses[0] == cluster.Endpoint(i, 0).String()
	}
	return services, intact, nil
}

func isWanted(name string, n int) bool {
	var i int
	if _, err := fmt.Sscanf(strings.TrimPrefix(name, "svc-"), "%d", &i); err != nil {
		return false
	}
	return i < n && cluster.ServiceName(i) == name
}

func create(ctx context.Context, c kubernetes.Interface, i int) error {
	if _, err := c.CoreV1().Services(cluster.Namespace).Create(ctx, cluster.Service(i), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service %s: %w", cluster.ServiceName(i), err)
	}
	s := cluster.Slice(i, cluster.InitialEndpoints(i))
	_, err := c.DiscoveryV1().EndpointSlices(cluster.Namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = setEndpoints(ctx, c, i, cluster.InitialEndpoints(i))
	}
	if err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", s.Name, err)
	}
	return nil
}

func remove(ctx context.Context, c kubernetes.Interface, name string) error {
	err := c.CoreV1().Services(cluster.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete service %s: %w", name, err)
	}
	err = c.DiscoveryV1().EndpointSlices(cluster.Namespace).Delete(ctx, name+"-0", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete EndpointSlice %s-0: %w", name, err)
	}
	return nil
}

// parallel runs the jobs on loadWorkers goroutines and joins their errors.
func parallel(jobs []func() error) error {
	ch := make(chan func() error)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for job := range ch {
				if err := job(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return errors.Join(errs...)
}
