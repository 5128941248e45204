package podkit

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

// Images imported into every node (hack/cluster/lib.sh's names).
const (
	ServerImage   = "ipvs-proxy/test-server:dev"
	ClientImage   = "ipvs-proxy/rolling-client:dev"
	BusyboxImage  = "cluster.local/busybox:1"
	UpstreamImage = "registry.k8s.io/kube-proxy:v1.37.2"
)

// Ports of the test server (test/e2e/guest.ServePod).
const (
	HTTPPort = 8080
	EchoPort = 9000
)

// PodTimeout bounds a pod's start: under TCG with two busy nodes a pod takes up to a minute.
const PodTimeout = 5 * time.Minute

// ServerPod is a test-server pod on node with labels, ready once it answers HTTP.
func ServerPod(name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name: "server", Image: ServerImage, ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Ports: []corev1.ContainerPort{{ContainerPort: HTTPPort}, {ContainerPort: EchoPort}},
				// A 5 s timeout: under TCG on a loaded host the default 1 s timed out and
				// the pods' readiness flapped, which the scenarios must not mistake for
				// their own endpoint changes.
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(HTTPPort)}},
					PeriodSeconds:  2,
					TimeoutSeconds: 5,
				},
			}},
		},
	}
}

// ClientPod runs rolling-client with args on node; it tolerates every taint (a lost
// node's taints must not evict the watcher or the client).
func ClientPod(name, node string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "main", Image: ClientImage, ImagePullPolicy: corev1.PullNever,
				Command: append([]string{"/rolling-client"}, args...)}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}

// HostPod makes pod a privileged pod on its node's host network.
func HostPod(pod *corev1.Pod) *corev1.Pod {
	pod.Spec.HostNetwork = true
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	}
	return pod
}

// Create creates pod in ns.
func Create(t testing.TB, client kubernetes.Interface, ns string, pod *corev1.Pod) {
	t.Helper()
	if _, err := client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, pod.Name, err)
	}
}

// CreateRunning creates pod and waits until it runs.
func CreateRunning(t testing.TB, client kubernetes.Interface, ns string, pod *corev1.Pod) {
	t.Helper()
	Create(t, client, ns, pod)
	kubeclient.Eventually(t, PodTimeout, "pod "+ns+"/"+pod.Name+" running", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("pod ended: %s", p.Status.Phase)
		}
		return p.Status.Phase == corev1.PodRunning, nil
	})
}

// WaitReady waits until every named pod of ns is Ready.
func WaitReady(t testing.TB, client kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		kubeclient.Eventually(t, PodTimeout, "pod "+ns+"/"+name+" ready", func(ctx context.Context) (bool, error) {
			p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					return c.Status == corev1.ConditionTrue, nil
				}
			}
			return false, nil
		})
	}
}

// RunToCompletion creates pod, waits for it to succeed and returns each container's log.
func RunToCompletion(t testing.TB, client kubernetes.Interface, ns string, pod *corev1.Pod) map[string]string {
	t.Helper()
	Create(t, client, ns, pod)
	kubeclient.Eventually(t, PodTimeout, "pod "+ns+"/"+pod.Name+" succeeded", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			t.Fatalf("pod %s/%s failed: %s", ns, pod.Name, logs(client, ns, pod))
		}
		return p.Status.Phase == corev1.PodSucceeded, nil
	})
	out := map[string]string{}
	for _, c := range pod.Spec.Containers {
		raw, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(context.Background())
		if err != nil {
			t.Fatalf("read the log of pod %s/%s container %s: %v", ns, pod.Name, c.Name, err)
		}
		out[c.Name] = string(raw)
	}
	_ = client.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{})
	return out
}

func logs(client kubernetes.Interface, ns string, pod *corev1.Pod) string {
	var b strings.Builder
	for _, c := range pod.Spec.Containers {
		raw, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(context.Background())
		fmt.Fprintf(&b, "[%s] %s %v\n", c.Name, raw, err)
	}
	return b.String()
}

// Follow streams pod's log in the background, calling each with every line and the
// time the test read it, until the test ends or the stream does.
func Follow(t testing.TB, client kubernetes.Interface, ns, pod string, each func(line []byte, at time.Time)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow the log of pod %s/%s: %v", ns, pod, err)
	}
	go func() {
		defer stream.Close()
		sc := bufio.NewScanner(stream)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			each(sc.Bytes(), time.Now())
		}
	}()
}

// ProxyPod is the kube-proxy DaemonSet's pod on node (kubeadm's label k8s-app=kube-proxy),
// the newest when a rollout leaves two.
func ProxyPod(t testing.TB, client kubernetes.Interface, node string) *corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{
		LabelSelector: "k8s-app=kube-proxy", FieldSelector: "spec.nodeName=" + node})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("kube-proxy pod on %s: %d pods, %v", node, len(pods.Items), err)
	}
	newest := &pods.Items[0]
	for i := range pods.Items {
		if pods.Items[i].CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = &pods.Items[i]
		}
	}
	return newest
}
