//go:build cluster

package rolling

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

const (
	// Imported into every node by hack/cluster/images.sh and node-up.sh: never pulled.
	serverImage = "ipvs-proxy/test-server:dev"
	clientImage = "ipvs-proxy/rolling-client:dev"
	clientNode  = "node-a"
	replicas    = 3
	serverPort  = 8080
	servicePort = 80
	podTimeout  = 5 * time.Minute
)

// realServerWatch records, for each real server ("ip:port"), when the test read the
// watcher's line saying it left IPVS, and how many real servers are there now.
type realServerWatch struct {
	mu   sync.Mutex
	gone map[string]time.Time
	live map[string]bool
}

func TestRollingRestart(t *testing.T) {
	client := kubeclient.New(t)
	ns := kubeclient.Namespace(t, client, "rolling")
	row := os.Getenv("ROLLING_ROW")
	duration := 150 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ROLLING_DURATION")); err == nil {
		duration = d
	}

	svc := createService(t, client, ns)
	vip := net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(servicePort))
	createDeployment(t, client, ns)
	waitDeploymentReady(t, client, ns)
	watches := map[string]*realServerWatch{}
	for _, node := range []string{"node-a", "node-b"} {
		watches[node] = startWatcher(t, client, ns, node, vip)
	}
	for node, w := range watches {
		kubeclient.Eventually(t, 2*time.Minute, fmt.Sprintf("IPVS virtual server %s with %d real servers on %s", vip, replicas, node),
			func(context.Context) (bool, error) { return w.count() == replicas, nil })
		t.Logf("%s: IPVS virtual server %s has %d real servers", node, vip, replicas)
	}

	deletions := watchDeletions(t, client, ns)
	clientPod := startClient(t, client, ns, vip, duration)
	time.Sleep(10 * time.Second) // the client's steady state before the restart
	restart := time.Now()
	rolloutRestart(t, client, ns)
	waitRolledOut(t, client, ns, restart)
	t.Logf("rollout restart done in %v", time.Since(restart).Round(time.Second))
	rep := clientReport(t, client, ns, clientPod, duration)
	if rep.Summary.Requests == 0 {
		t.Fatalf("client pod %s/%s made no request", ns, clientPod.Name)
	}
	deletions.waitGone(watches[clientNode], time.Minute)
	report(t, row, rep, deletions.latencies(watches[clientNode]))
}

func createService(t *testing.T, client kubernetes.Interface, ns string) *corev1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "test-server"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "test-server"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: servicePort, TargetPort: intstr.FromInt32(serverPort)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/test-server: %v", ns, err)
	}
	return svc
}

// createDeployment makes the Deployment a user would: 3 replicas, a readiness probe, the
// default RollingUpdate strategy and termination grace.
func createDeployment(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	labels := map[string]string{"app": "test-server"}
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "test-server"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers: []corev1.Container{{
						Name: "server", Image: serverImage, ImagePullPolicy: corev1.PullNever,
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						Ports: []corev1.ContainerPort{{ContainerPort: serverPort}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(serverPort)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/test-server: %v", ns, err)
	}
}

func waitDeploymentReady(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	kubeclient.Eventually(t, podTimeout, "deployment "+ns+"/test-server ready", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "test-server", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ReadyReplicas == replicas && d.Status.UpdatedReplicas == replicas, nil
	})
}

// rolloutRestart does what `kubectl rollout restart` does: a new restartedAt annotation
// on the pod template.
func rolloutRestart(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`,
		time.Now().Format(time.RFC3339))
	if _, err := client.AppsV1().Deployments(ns).Patch(context.Background(), "test-server", "application/strategic-merge-patch+json",
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("rollout restart deployment %s/test-server: %v", ns, err)
	}
}

func waitRolledOut(t *testing.T, client kubernetes.Interface, ns string, since time.Time) {
	t.Helper()
	kubeclient.Eventually(t, podTimeout, "deployment "+ns+"/test-server rolled out", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "test-server", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == replicas && s.Replicas == replicas &&
			s.AvailableReplicas == replicas, nil
	})
}

func basePod(name, node string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "main", Image: clientImage, ImagePullPolicy: corev1.PullNever,
				Command: append([]string{"/rolling-client"}, args...)}},
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}

func createRunning(t *testing.T, client kubernetes.Interface, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	p, err := client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, pod.Name, err)
	}
	kubeclient.Eventually(t, podTimeout, "pod "+ns+"/"+pod.Name+" running", func(ctx context.Context) (bool, error) {
		p, err = client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("pod ended: %s", p.Status.Phase)
		}
		return p.Status.Phase == corev1.PodRunning, nil
	})
	return p
}

// startWatcher runs the IPVS watcher on node's host network and reads its lines.
func startWatcher(t *testing.T, client kubernetes.Interface, ns, node, vip string) *realServerWatch {
	t.Helper()
	pod := basePod("ipvs-watch-"+node, node, "watch", "-vip", vip)
	pod.Spec.HostNetwork = true
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	createRunning(t, client, ns, pod)
	w := &realServerWatch{gone: map[string]time.Time{}, live: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow the log of pod %s/%s: %v", ns, pod.Name, err)
	}
	go w.read(stream)
	return w
}

func (w *realServerWatch) read(stream interface {
	Read([]byte) (int, error)
	Close() error
}) {
	defer stream.Close()
	sc := bufio.NewScanner(stream)
	for sc.Scan() {
		var c struct{ Event, Real string }
		if json.Unmarshal(sc.Bytes(), &c) != nil {
			continue
		}
		w.mu.Lock()
		switch c.Event {
		case "add":
			w.live[c.Real] = true
		case "del":
			delete(w.live, c.Real)
			w.gone[c.Real] = time.Now()
		}
		w.mu.Unlock()
	}
}

func (w *realServerWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.live)
}

func (w *realServerWatch) goneAt(real string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.gone[real]
	return at, ok
}

// deletionWatch records when the test first saw each server pod with a deletionTimestamp.
type deletionWatch struct {
	mu      sync.Mutex
	deleted map[string]time.Time // pod IP -> when
	names   map[string]string    // pod IP -> pod name
	// removed is when the pod object went away (the kubelet confirmed the containers
	// stopped); the EndpointSlice controller drops the endpoint then.
	removed map[string]time.Time
}

func watchDeletions(t *testing.T, client kubernetes.Interface, ns string) *deletionWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "app=test-server"})
	if err != nil {
		t.Fatalf("watch pods %s app=test-server: %v", ns, err)
	}
	d := &deletionWatch{deleted: map[string]time.Time{}, names: map[string]string{}, removed: map[string]time.Time{}}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.DeletionTimestamp == nil || p.Status.PodIP == "" {
				continue
			}
			d.mu.Lock()
			if ev.Type == watch.Deleted {
				d.removed[p.Status.PodIP] = time.Now()
			}
			if _, seen := d.deleted[p.Status.PodIP]; !seen {
				d.deleted[p.Status.PodIP] = time.Now()
				d.names[p.Status.PodIP] = p.Name
			}
			d.mu.Unlock()
		}
	}()
	return d
}

// waitGone waits up to timeout for every deleted pod's real server to leave IPVS on the
// watched node (a late removal is then measured, not reported as still there).
func (d *deletionWatch) waitGone(rs *realServerWatch, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		d.mu.Lock()
		left := 0
		for ip := range d.deleted {
			if _, ok := rs.goneAt(net.JoinHostPort(ip, fmt.Sprint(serverPort))); !ok {
				left++
			}
		}
		d.mu.Unlock()
		if left == 0 {
			return
		}
	}
}

// latencies pairs each deleted pod with its real server's removal on the watched node.
func (d *deletionWatch) latencies(rs *realServerWatch) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for ip, at := range d.deleted {
		real := net.JoinHostPort(ip, fmt.Sprint(serverPort))
		if gone, ok := rs.goneAt(real); ok {
			line := fmt.Sprintf("%s %.2f s", d.names[ip], gone.Sub(at).Seconds())
			if removed, ok := d.removed[ip]; ok {
				line += podObjectGone(gone.Sub(removed))
			}
			out = append(out, line)
		} else {
			out = append(out, fmt.Sprintf("%s still a real server", d.names[ip]))
		}
	}
	sort.Strings(out)
	return out
}

// startClient runs the client pod on node-a; $ROLLING_RATE (default 20) is its most
// requests per second (under TCG two busy nodes share 2 host cores: 50/s saturated them).
// podObjectGone says when the real server went relative to the pod object's removal
// (with the gate ours removes it when the endpoint stops serving, before the kubelet
// deletes the pod object).
func podObjectGone(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf(" (%.2f s before the pod object went)", -d.Seconds())
	}
	return fmt.Sprintf(" (%.2f s after the pod object went)", d.Seconds())
}

func startClient(t *testing.T, client kubernetes.Interface, ns, vip string, d time.Duration) *corev1.Pod {
	t.Helper()
	rate := os.Getenv("ROLLING_RATE")
	if rate == "" {
		rate = "20"
	}
	return createRunning(t, client, ns, basePod("client", clientNode, "client", "-target", vip, "-duration", d.String(), "-rate", rate))
}

// clientReport waits for the client pod to finish and decodes the report it printed.
func clientReport(t *testing.T, client kubernetes.Interface, ns string, pod *corev1.Pod, d time.Duration) clientResult {
	t.Helper()
	kubeclient.Eventually(t, d+podTimeout, "client pod "+ns+"/"+pod.Name+" finished", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			raw, _ := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			t.Fatalf("client pod %s/%s failed: %s", ns, pod.Name, raw)
		}
		return p.Status.Phase == corev1.PodSucceeded, nil
	})
	raw, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read the log of pod %s/%s: %v", ns, pod.Name, err)
	}
	var rep clientResult
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rep) == nil {
			return rep
		}
	}
	t.Fatalf("no report in the log of pod %s/%s: %s", ns, pod.Name, raw)
	return rep
}

// clientResult mirrors cmd/rolling-client's Report.
type clientResult struct {
	Summary  results.Summary
	Failures []results.Request
	Slow     []results.Request
}

// report logs the row and appends it to $ROLLING_REPORT (markdown) when set.
func report(t *testing.T, row string, rep clientResult, latencies []string) {
	s := rep.Summary
	window := "-"
	if len(s.Windows) > 0 {
		window = fmt.Sprintf("%.2f s (longest)", s.Longest.Length().Seconds())
	}
	line := fmt.Sprintf("| %s | %d | %d | %d | %s | %s |", row, s.Requests, s.Failed, s.SlowOK, window, strings.Join(latencies, "; "))
	t.Logf("| row | requests | failed | slow >1 s | failure window | pod deletion -> real server gone (node-a) |\n%s", line)
	for _, f := range rep.Failures {
		t.Logf("failed: start %v dur %v port %d kind %s: %s", f.Start.Round(time.Millisecond), f.Dur.Round(time.Millisecond), f.Port, f.Kind, f.Err)
	}
	for _, f := range rep.Slow {
		t.Logf("slow: start %v dur %v port %d pod %s", f.Start.Round(time.Millisecond), f.Dur.Round(time.Millisecond), f.Port, f.Pod)
	}
	if path := os.Getenv("ROLLING_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("open report %s: %v", path, err)
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}
