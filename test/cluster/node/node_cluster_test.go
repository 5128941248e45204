//go:build cluster

package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const (
	// busyboxImage is imported into every node by hack/cluster/node-image.sh: never pulled.
	busyboxImage   = "cluster.local/busybox:1"
	wantKubelet    = "v1.37.2"
	namespace      = metav1.NamespaceDefault
	serverPort     = 8080
	podWaitTimeout = 3 * time.Minute
)

// setup is what every test needs: a client and the node names.
type setup struct {
	client kubernetes.Interface
	nodes  []string
}

func newSetup(t *testing.T) setup {
	t.Helper()
	path, nodes := os.Getenv("CP_KUBECONFIG"), strings.Fields(os.Getenv("CLUSTER_NODES"))
	if path == "" || len(nodes) == 0 {
		t.Skip("CP_KUBECONFIG or CLUSTER_NODES is not set; run hack/cluster/node-test.sh")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create client for %s: %v", cfg.Host, err)
	}
	return setup{client: client, nodes: nodes}
}

func TestNodesReady(t *testing.T) {
	s := newSetup(t)
	ctx := t.Context()
	for _, name := range s.nodes {
		node, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get Node %s: %v", name, err)
		}
		info := node.Status.NodeInfo
		t.Logf("Node %s: kubelet %s, runtime %s, kernel %s, podCIDRs %v, addresses %v",
			name, info.KubeletVersion, info.ContainerRuntimeVersion, info.KernelVersion, node.Spec.PodCIDRs, node.Status.Addresses)
		if !isReady(node) {
			t.Errorf("Node %s is not Ready: %v", name, node.Status.Conditions)
		}
		if info.KubeletVersion != wantKubelet {
			t.Errorf("Node %s: kubelet version %q, want %q", name, info.KubeletVersion, wantKubelet)
		}
		if !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
			t.Errorf("Node %s: runtime %q, want containerd", name, info.ContainerRuntimeVersion)
		}
		if len(node.Spec.PodCIDRs) == 0 {
			t.Errorf("Node %s has no spec.podCIDRs", name)
		}
	}
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestPodTraffic runs a server pod on every node, then on every node a client pod on the
// pod network and one on the host network that fetch /hostname from every server over
// each of its addresses: same node through the bridge, other nodes through the L2 routes.
func TestPodTraffic(t *testing.T) {
	s := newSetup(t)
	ensureDefaultServiceAccount(t, s.client)
	var servers []*corev1.Pod
	for _, name := range s.nodes {
		servers = append(servers, startServer(t, s.client, name))
	}
	for i, name := range s.nodes {
		pod := waitPod(t, s.client, servers[i].Name, podReady)
		checkPodIPs(t, s.client, pod, name)
		servers[i] = pod
	}
	for _, name := range s.nodes {
		for _, hostNetwork := range []bool{false, true} {
			client := runClient(t, s.client, name, hostNetwork, servers)
			checkClientResults(t, client, servers)
		}
	}
}

// ensureDefaultServiceAccount creates ServiceAccount default/default: the ServiceAccount
// admission plugin refuses pods without it, and no controller-manager makes it here.
func ensureDefaultServiceAccount(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
	_, err := client.CoreV1().ServiceAccounts(namespace).Create(t.Context(), sa, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount %s/default: %v", namespace, err)
	}
}

// basePod is a pod bound to node (no scheduler) with the busybox image and no API token.
func basePod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app": "node-test"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}

// startServer creates pod server-NODE: busybox httpd serving /etc, so GET /hostname answers
// the pod's name; ready once the kubelet's HTTP probe (from the node) gets it.
func startServer(t *testing.T, client kubernetes.Interface, node string) *corev1.Pod {
	t.Helper()
	pod := basePod("server-"+node, node)
	pod.Spec.Containers = []corev1.Container{{
		Name: "httpd", Image: busyboxImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"/bin/busybox", "httpd", "-f", "-p", fmt.Sprint(serverPort), "-h", "/etc"},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/hostname", Port: intstr.FromInt32(serverPort)}},
			PeriodSeconds: 2,
		},
	}}
	return createPod(t, client, pod)
}

// createPod replaces any leftover pod of the same name and creates pod; the test deletes it at the end.
func createPod(t *testing.T, client kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pods := client.CoreV1().Pods(namespace)
	deletePod(t, client, pod.Name)
	created, err := pods.Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s on %s: %v", pod.Name, pod.Spec.NodeName, err)
	}
	t.Cleanup(func() { deletePod(t, client, pod.Name) })
	return created
}

// deletePod deletes a pod and waits until it is gone (its name is reused by the next run).
func deletePod(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods := client.CoreV1().Pods(namespace)
	err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Errorf("delete pod %s: %v", name, err)
		return
	}
	for ctx.Err() == nil {
		if _, err := pods.Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("pod %s still present a minute after its deletion", name)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podFinished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// waitPod polls pod name until done(pod); fails the test after podWaitTimeout, showing its status.
func waitPod(t *testing.T, client kubernetes.Interface, name string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	start := time.Now()
	var pod *corev1.Pod
	var err error
	for time.Since(start) < podWaitTimeout {
		pod, err = client.CoreV1().Pods(namespace).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil && done(pod) {
			t.Logf("pod %s on %s: %s after %.1f s (IPs %v)", name, pod.Spec.NodeName, pod.Status.Phase,
				time.Since(start).Seconds(), pod.Status.PodIPs)
			return pod
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	t.Fatalf("pod %s on %s: not done after %s: phase %s, conditions %v, containers %v", name, pod.Spec.NodeName,
		podWaitTimeout, pod.Status.Phase, pod.Status.Conditions, pod.Status.ContainerStatuses)
	return nil
}

// checkPodIPs checks that every pod IP lies in one of its node's pod CIDRs.
func checkPodIPs(t *testing.T, client kubernetes.Interface, pod *corev1.Pod, nodeName string) {
	t.Helper()
	node, err := client.CoreV1().Nodes().Get(t.Context(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Node %s: %v", nodeName, err)
	}
	if len(pod.Status.PodIPs) != len(node.Spec.PodCIDRs) {
		t.Errorf("pod %s has IPs %v, node %s has pod CIDRs %v: want one IP per CIDR", pod.Name, pod.Status.PodIPs, nodeName, node.Spec.PodCIDRs)
	}
	for _, ip := range pod.Status.PodIPs {
		if !inAny(ip.IP, node.Spec.PodCIDRs) {
			t.Errorf("pod %s IP %s is outside node %s's pod CIDRs %v", pod.Name, ip.IP, nodeName, node.Spec.PodCIDRs)
		}
	}
}

func inAny(ip string, cidrs []string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// runClient runs a client pod on node that fetches /hostname from every address of every
// server and writes "ADDRESS ANSWER" lines (ANSWER: the body's last line, or FAIL) as its
// termination message, which the kubelet puts in the pod's status.
func runClient(t *testing.T, client kubernetes.Interface, node string, hostNetwork bool, servers []*corev1.Pod) *corev1.Pod {
	t.Helper()
	name := "client-" + node
	if hostNetwork {
		name += "-hostnet"
	}
	var script strings.Builder
	for _, s := range servers {
		for _, ip := range s.Status.PodIPs {
			fmt.Fprintf(&script, "a=$(printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 %s %d | tail -n 1); echo \"%s ${a:-FAIL}\" >>/dev/termination-log\n",
				ip.IP, serverPort, ip.IP)
		}
	}
	// The API server through qemu's guestfwd: a plain HTTP request to its TLS port gets Go's
	// "Client sent an HTTP request to an HTTPS server." answer.
	if addr := os.Getenv("CLUSTER_APISERVER_GUEST_ADDR"); addr != "" {
		host, port, _ := strings.Cut(addr, ":")
		fmt.Fprintf(&script, "a=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 %s %s | tail -n 1); echo \"apiserver ${a:-FAIL}\" >>/dev/termination-log\n",
			host, port)
	}
	pod := basePod(name, node)
	pod.Spec.HostNetwork = hostNetwork
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.Containers = []corev1.Container{{
		Name: "client", Image: busyboxImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"/bin/busybox", "sh", "-c", script.String()},
	}}
	createPod(t, client, pod)
	return waitPod(t, client, name, podFinished)
}

// checkClientResults checks that the client got every server's name from each of its addresses.
func checkClientResults(t *testing.T, client *corev1.Pod, servers []*corev1.Pod) {
	t.Helper()
	if len(client.Status.ContainerStatuses) == 0 || client.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("client %s: no terminated container status: %v", client.Name, client.Status.ContainerStatuses)
	}
	got := map[string]string{}
	for _, line := range strings.Split(client.Status.ContainerStatuses[0].State.Terminated.Message, "\n") {
		if addr, answer, ok := strings.Cut(line, " "); ok {
			got[addr] = answer
		}
	}
	if os.Getenv("CLUSTER_APISERVER_GUEST_ADDR") != "" {
		if answer := got["apiserver"]; !strings.Contains(answer, "HTTPS server") {
			t.Errorf("%s (node %s, hostNetwork %v) -> API server %s: got %q, want its answer to plain HTTP",
				client.Name, client.Spec.NodeName, client.Spec.HostNetwork, os.Getenv("CLUSTER_APISERVER_GUEST_ADDR"), answer)
		} else {
			t.Logf("%s -> API server %s: ok", client.Name, os.Getenv("CLUSTER_APISERVER_GUEST_ADDR"))
		}
	}
	for _, s := range servers {
		for _, ip := range s.Status.PodIPs {
			route := "across nodes"
			if s.Spec.NodeName == client.Spec.NodeName {
				route = "same node"
			}
			if answer := got[ip.IP]; answer != s.Name {
				t.Errorf("%s (node %s, hostNetwork %v) -> %s %s (%s): got %q, want %q", client.Name, client.Spec.NodeName,
					client.Spec.HostNetwork, s.Name, ip.IP, route, answer, s.Name)
			} else {
				t.Logf("%s -> %s %s (%s): ok", client.Name, s.Name, ip.IP, route)
			}
		}
	}
}

// TestKubeletThroughAPIServer checks the API server's path to every kubelet (node-proxy.sh's
// egress proxy and the VMs' forwarded kubelet ports): the node proxy subresource reaches the
// kubelet's /healthz, and a pod's log is read through the API server.
func TestKubeletThroughAPIServer(t *testing.T) {
	s := newSetup(t)
	if os.Getenv("CLUSTER_KUBELET_PROXY") != "1" {
		t.Skip("CLUSTER_KUBELET_PROXY is not 1: the API server was not started with node-proxy.sh's egress configuration")
	}
	ensureDefaultServiceAccount(t, s.client)
	for _, name := range s.nodes {
		body, err := s.client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", name, "proxy", "healthz").DoRaw(t.Context())
		if err != nil || string(body) != "ok" {
			t.Errorf("GET nodes/%s/proxy/healthz: %q, %v", name, body, err)
		}
		pod := basePod("logger-"+name, name)
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
		want := "hello from " + name
		pod.Spec.Containers = []corev1.Container{{
			Name: "log", Image: busyboxImage, ImagePullPolicy: corev1.PullNever,
			Command: []string{"/bin/busybox", "echo", want},
		}}
		createPod(t, s.client, pod)
		waitPod(t, s.client, pod.Name, podFinished)
		logs, err := s.client.CoreV1().Pods(namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(t.Context())
		if err != nil || strings.TrimSpace(string(logs)) != want {
			t.Errorf("logs of pod %s through the API server: %q, %v; want %q", pod.Name, logs, err, want)
		} else {
			t.Logf("node %s: kubelet /healthz and pod logs through the API server: ok", name)
		}
	}
}
