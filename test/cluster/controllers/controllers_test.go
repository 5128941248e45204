package controllers

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

const settle = 60 * time.Second

// deployment is a Deployment of the test-server image; nodeName, when set, pins its pods.
func deployment(name string, replicas int32, image, nodeName string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "server", Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	if nodeName != "" {
		d.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: nodeName}
	}
	return d
}

// ownedPods lists the pods of namespace ns whose controller is the ReplicaSet rs.
func ownedPods(ctx context.Context, client kubernetes.Interface, ns string, rs *appsv1.ReplicaSet) ([]corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", ns, err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == rs.UID {
			out = append(out, p)
		}
	}
	return out, nil
}

// replicaSetOf waits for the ReplicaSet the Deployment controller made for d and returns it.
func replicaSetOf(t *testing.T, client kubernetes.Interface, d *appsv1.Deployment) *appsv1.ReplicaSet {
	t.Helper()
	var rs *appsv1.ReplicaSet
	kubeclient.Eventually(t, settle, "a ReplicaSet owned by deployment "+d.Namespace+"/"+d.Name, func(ctx context.Context) (bool, error) {
		list, err := client.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == d.UID {
				rs = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return rs
}

// waitPods waits until rs owns want pods that all satisfy ok, and returns them.
func waitPods(t *testing.T, client kubernetes.Interface, rs *appsv1.ReplicaSet, want int, what string, ok func(corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	kubeclient.Eventually(t, settle, fmt.Sprintf("%d pods of replicaset %s/%s %s", want, rs.Namespace, rs.Name, what), func(ctx context.Context) (bool, error) {
		var err error
		if pods, err = ownedPods(ctx, client, rs.Namespace, rs); err != nil || len(pods) != want {
			return false, err
		}
		for _, p := range pods {
			if !ok(p) {
				return false, nil
			}
		}
		return true, nil
	})
	return pods
}

// TestDeploymentCreatesReplicaSetAndPods: the Deployment controller makes a ReplicaSet
// with the Deployment's template, and the ReplicaSet controller its pods.
func TestDeploymentCreatesReplicaSetAndPods(t *testing.T) {
	client := kubeclient.New(t)
	image := kubeclient.Env(t, "TEST_SERVER_IMAGE")
	ns := kubeclient.Namespace(t, client, "deployment")
	d, err := client.AppsV1().Deployments(ns).Create(context.Background(), deployment("web", 3, image, ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/web: %v", ns, err)
	}
	rs := replicaSetOf(t, client, d)
	if got := rs.Spec.Template.Spec.Containers[0].Image; got != image || ptr.Deref(rs.Spec.Replicas, 0) != 3 {
		t.Errorf("replicaset %s: image %q, replicas %d; want %q, 3", rs.Name, got, ptr.Deref(rs.Spec.Replicas, 0), image)
	}
	if rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" {
		t.Errorf("replicaset %s has no %s label: %v", rs.Name, appsv1.DefaultDeploymentUniqueLabelKey, rs.Labels)
	}
	pods := waitPods(t, client, rs, 3, "created", func(corev1.Pod) bool { return true })
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, rs.Name+"-") || p.Spec.Containers[0].Image != image {
			t.Errorf("pod %s: image %q; want a pod named %s-* of image %q", p.Name, p.Spec.Containers[0].Image, rs.Name, image)
		}
	}
}

// createReadyNode creates a Node as a kubelet registers one (capacity, Ready) and deletes it
// when the test ends. Without heartbeats the node-lifecycle controller marks it NotReady
// after node-monitor-grace-period (50 s by default): tests use it before that.
func createReadyNode(t *testing.T, client kubernetes.Interface, prefix string) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1000000)
	node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{
		// No kubernetes.io/os label: DaemonSets such as kube-proxy (nodeSelector os=linux)
		// leave the node alone, so their rollouts do not wait for it.
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node %s: %v", name, err)
		}
	})
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	// Controllers (node IPAM, taints) update the new node at once: retry on conflicts.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if node, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err
		}
		now := metav1.Now()
		node.Status.Capacity, node.Status.Allocatable = capacity, capacity
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		node, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update status of node %s: %v", name, err)
	}
	return node
}

// podCIDRs waits for node IPAM to give the node its pod CIDRs and returns them.
func podCIDRs(t *testing.T, client kubernetes.Interface, name string) []netip.Prefix {
	t.Helper()
	var cidrs []netip.Prefix
	kubeclient.Eventually(t, settle, "pod CIDRs of node "+name, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(node.Spec.PodCIDRs) == 0 {
			return false, err
		}
		cidrs = nil
		for _, c := range node.Spec.PodCIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return false, fmt.Errorf("node %s podCIDRs %v: %w", name, node.Spec.PodCIDRs, err)
			}
			cidrs = append(cidrs, p)
		}
		if node.Spec.PodCIDR != node.Spec.PodCIDRs[0] {
			return false, fmt.Errorf("node %s: podCIDR %q is not podCIDRs[0] %q", name, node.Spec.PodCIDR, node.Spec.PodCIDRs[0])
		}
		return true, nil
	})
	return cidrs
}

// TestNodeIPAMAssignsPodCIDRs: kube-controller-manager (--allocate-node-cidrs) gives a new
// node one pod CIDR per family of --cluster-cidr ($CLUSTER_POD_CIDR): /24 of the IPv4
// range, /64 of the IPv6 one, in that order.
func TestNodeIPAMAssignsPodCIDRs(t *testing.T) {
	client := kubeclient.New(t)
	clusterCIDRs := strings.Split(kubeclient.Env(t, "CLUSTER_POD_CIDR"), ",")
	node := createReadyNode(t, client, "ipam")
	got := podCIDRs(t, client, node.Name)
	wantBits := []int{24, 64}
	if len(got) != len(clusterCIDRs) {
		t.Fatalf("node %s pod CIDRs %v; want one in each of %v", node.Name, got, clusterCIDRs)
	}
	for i, c := range clusterCIDRs {
		cluster := netip.MustParsePrefix(c)
		if got[i].Bits() != wantBits[i] || !cluster.Contains(got[i].Addr()) || got[i].Addr().Is4() != cluster.Addr().Is4() {
			t.Errorf("node %s pod CIDR %d = %v; want a /%d of %v", node.Name, i, got[i], wantBits[i], cluster)
		}
	}
}

// TestSchedulerBindsPodsToReadyNode: kube-scheduler binds a Deployment's pods to the
// Ready node their nodeSelector names.
func TestSchedulerBindsPodsToReadyNode(t *testing.T) {
	client := kubeclient.New(t)
	image := kubeclient.Env(t, "TEST_SERVER_IMAGE")
	node := createReadyNode(t, client, "sched")
	ns := kubeclient.Namespace(t, client, "scheduler")
	d, err := client.AppsV1().Deployments(ns).Create(context.Background(), deployment("pinned", 2, image, node.Name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/pinned: %v", ns, err)
	}
	rs := replicaSetOf(t, client, d)
	waitPods(t, client, rs, 2, "bound to node "+node.Name, func(p corev1.Pod) bool { return p.Spec.NodeName == node.Name })
}

// addrIn is host number n of prefix p (p's address + n).
func addrIn(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// runPod writes the status a kubelet writes for a running pod: phase Running, one
// address per family from the node's pod CIDRs, Ready as given.
func runPod(ctx context.Context, client kubernetes.Interface, ns, name string, cidrs []netip.Prefix, host int, ready bool) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIPs = nil
		for _, c := range cidrs {
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: addrIn(c, host).String()})
		}
		pod.Status.PodIP = pod.Status.PodIPs[0].IP
		pod.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: status, LastTransitionTime: now},
		}
		_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update status of pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// endpointStates reads the EndpointSlices of service ns/name of one address type as
// "address ready/serving/terminating" strings.
func endpointStates(ctx context.Context, client kubernetes.Interface, ns, name string, family discoveryv1.AddressType) (map[string]string, error) {
	slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("list endpointslices of service %s/%s: %w", ns, name, err)
	}
	out := map[string]string{}
	for _, s := range slices.Items {
		if s.AddressType != family {
			continue
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			out[e.Addresses[0]] = fmt.Sprintf("%t/%t/%t", ptr.Deref(c.Ready, false), ptr.Deref(c.Serving, false), ptr.Deref(c.Terminating, false))
		}
	}
	return out, nil
}

// TestEndpointSliceControllerFollowsPods: for a dual-stack Service, the EndpointSlice
// controller publishes one slice per family with the pods' addresses, and follows a pod
// that turns unready (ready false, serving false) and one that is deleted (terminating,
// still serving: no kubelet here confirms the deletion).
func TestEndpointSliceControllerFollowsPods(t *testing.T) {
	client := kubeclient.New(t)
	image := kubeclient.Env(t, "TEST_SERVER_IMAGE")
	ctx := context.Background()
	node := createReadyNode(t, client, "slices")
	cidrs := podCIDRs(t, client, node.Name)
	ns := kubeclient.Namespace(t, client, "endpointslice")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector:       map[string]string{"app": "web"},
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyPreferDualStack),
			Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s/web: %v", ns, err)
	}
	d, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", 2, image, node.Name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/web: %v", ns, err)
	}
	pods := waitPods(t, client, replicaSetOf(t, client, d), 2, "bound", func(p corev1.Pod) bool { return p.Spec.NodeName != "" })
	for i := range pods {
		if err := runPod(ctx, client, ns, pods[i].Name, cidrs, 10+i, true); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want map[discoveryv1.AddressType]map[string]string) {
		t.Helper()
		kubeclient.Eventually(t, settle, what, func(ctx context.Context) (bool, error) {
			for family, states := range want {
				got, err := endpointStates(ctx, client, ns, "web", family)
				if err != nil || fmt.Sprint(got) != fmt.Sprint(states) {
					return false, fmt.Errorf("%s endpoints %v, want %v (%v)", family, got, states, err)
				}
			}
			return true, nil
		})
	}
	states := func(s0, s1 string) map[discoveryv1.AddressType]map[string]string {
		return map[discoveryv1.AddressType]map[string]string{
			discoveryv1.AddressTypeIPv4: {addrIn(cidrs[0], 10).String(): s0, addrIn(cidrs[0], 11).String(): s1},
			discoveryv1.AddressTypeIPv6: {addrIn(cidrs[1], 10).String(): s0, addrIn(cidrs[1], 11).String(): s1},
		}
	}
	expect("both pods ready in the IPv4 and IPv6 slices", states("true/true/false", "true/true/false"))

	if err := runPod(ctx, client, ns, pods[0].Name, cidrs, 10, false); err != nil {
		t.Fatal(err)
	}
	expect("pod "+pods[0].Name+" unready", states("false/false/false", "true/true/false"))

	if err := client.CoreV1().Pods(ns).Delete(ctx, pods[1].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, pods[1].Name, err)
	}
	expect("pod "+pods[1].Name+" terminating", states("false/false/false", "false/true/true"))
}

// nodeCondition is the status of the node's condition of type ct ("" when absent).
func nodeCondition(node *corev1.Node, ct corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range node.Status.Conditions {
		if c.Type == ct {
			return c.Status
		}
	}
	return ""
}

// keepAlive renews node name's Lease in kube-node-lease every second until the test ends,
// as a kubelet does: the node-lifecycle controller keeps it Ready.
func keepAlive(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	leases := client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40)},
	}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				current, err := leases.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
					_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
					return err
				}
				current.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				_, err = leases.Update(ctx, current, metav1.UpdateOptions{})
				return err
			})
			if err != nil && ctx.Err() == nil {
				t.Errorf("renew lease %s/%s: %v", corev1.NamespaceNodeLease, name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

// TestNodeLifecycleMarksSilentNode: of two nodes, the one that stops reporting (no status
// updates, no Lease: as when its VM is killed) is marked Ready=Unknown by the
// node-lifecycle controller after --node-monitor-grace-period ($CLUSTER_NODE_MONITOR_GRACE;
// test-host.sh shortens kubeadm's 50 s) and tainted unreachable:NoExecute, and its pods
// are marked not ready, which the EndpointSlice controller publishes (ready=false,
// serving=false, terminating=false). The other node renews its Lease: with every node of
// the zone silent the controller would see a full disruption and add no taint. The
// timings are logged: the node-loss scenario takes the same path.
func TestNodeLifecycleMarksSilentNode(t *testing.T) {
	client := kubeclient.New(t)
	image := kubeclient.Env(t, "TEST_SERVER_IMAGE")
	grace, err := time.ParseDuration(kubeclient.Env(t, "CLUSTER_NODE_MONITOR_GRACE"))
	if err != nil {
		t.Fatalf("CLUSTER_NODE_MONITOR_GRACE: %v", err)
	}
	ctx := context.Background()
	alive := createReadyNode(t, client, "alive")
	keepAlive(t, client, alive.Name)
	node := createReadyNode(t, client, "silent")
	silentSince := time.Now()
	cidrs := podCIDRs(t, client, node.Name)
	ns := kubeclient.Namespace(t, client, "lifecycle")
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s/web: %v", ns, err)
	}
	d, err := client.AppsV1().Deployments(ns).Create(ctx, deployment("web", 1, image, node.Name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/web: %v", ns, err)
	}
	pod := waitPods(t, client, replicaSetOf(t, client, d), 1, "bound", func(p corev1.Pod) bool { return p.Spec.NodeName != "" })[0]
	if err := runPod(ctx, client, ns, pod.Name, cidrs, 10, true); err != nil {
		t.Fatal(err)
	}
	addr := addrIn(cidrs[0], 10).String()
	endpointIs := func(want string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			got, err := endpointStates(ctx, client, ns, "web", discoveryv1.AddressTypeIPv4)
			if err != nil || got[addr] != want {
				return false, fmt.Errorf("endpoint %s is %q, want %q (%v)", addr, got[addr], want, err)
			}
			return true, nil
		}
	}
	kubeclient.Eventually(t, settle, "endpoint "+addr+" ready", endpointIs("true/true/false"))

	deadline := grace + settle
	kubeclient.Eventually(t, deadline, "node "+node.Name+" Ready=Unknown", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		return err == nil && nodeCondition(n, corev1.NodeReady) == corev1.ConditionUnknown, err
	})
	if n, err := client.CoreV1().Nodes().Get(ctx, alive.Name, metav1.GetOptions{}); err != nil || nodeCondition(n, corev1.NodeReady) != corev1.ConditionTrue {
		t.Fatalf("node %s, which renews its lease, is not Ready (%v): the test's premise fails", alive.Name, err)
	}
	unknownAfter := time.Since(silentSince)
	if unknownAfter < grace {
		t.Errorf("node %s Ready=Unknown %v after its last status; want at least the grace period %v", node.Name, unknownAfter, grace)
	}
	kubeclient.Eventually(t, settle, "taint unreachable:NoExecute on node "+node.Name, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute {
				return true, nil
			}
		}
		return false, nil
	})
	kubeclient.Eventually(t, settle, "endpoint "+addr+" not ready", endpointIs("false/false/false"))
	t.Logf("node %s silent: Ready=Unknown after %v (grace %v), pod %s's endpoint not ready after %v",
		node.Name, unknownAfter.Round(100*time.Millisecond), grace, pod.Name, time.Since(silentSince).Round(100*time.Millisecond))
}
