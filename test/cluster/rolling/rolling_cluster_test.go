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
	"strconv"
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
	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
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

// serverImageV2 is the same image under a second tag (hack/cluster/images.sh), for
// ROLLING_HOW=set-image.
const serverImageV2 = "ipvs-proxy/test-server:v2"

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
	duration, err := parseDuration(os.Getenv("ROLLING_DURATION"))
	if err != nil {
		t.Fatal(err)
	}
	how := os.Getenv("ROLLING_HOW")
	if how == "" {
		how = "restart"
	}
	if how != "restart" && how != "set-image" {
		t.Fatalf("ROLLING_HOW=%s: restart or set-image", how)
	}
	preStop, err := parsePreStop(os.Getenv("ROLLING_PRESTOP"))
	if err != nil {
		t.Fatal(err)
	}
	update := how
	if preStop > 0 {
		update = fmt.Sprintf("%s, preStop sleep %d s", how, preStop)
	}
	family, err := parseFamily(os.Getenv("ROLLING_FAMILY"))
	if err != nil {
		t.Fatal(err)
	}
	if family == corev1.IPv6Protocol {
		update += "; IPv6"
	}
	clusterIPRate, nodePortRate, err := parseRate(os.Getenv("ROLLING_RATE"))
	if err != nil {
		t.Fatal(err)
	}

	// The node's kernel profile as the node has it (not as the script says).
	kernel := podkit.NodeIPVSKernel(t, client, ns, clientNode)
	t.Logf("%s: ip_vs %s", clientNode, kernel)
	if want := os.Getenv("ROLLING_PROFILE"); want != "" && kernel.Profile() != want {
		t.Fatalf("%s runs the %s ip_vs, want %s (ROLLING_PROFILE): %s", clientNode, kernel.Profile(), want, kernel)
	}

	vip := net.JoinHostPort(createService(t, client, ns, "test-server", corev1.ServiceTypeClusterIP, family).Spec.ClusterIP, fmt.Sprint(servicePort))
	np := createService(t, client, ns, "test-server-nodeport", corev1.ServiceTypeNodePort, family)
	nodePort := net.JoinHostPort(nodeIP(t, client, clientNode, family), fmt.Sprint(np.Spec.Ports[0].NodePort))
	createDeployment(t, client, ns, preStop)
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
	podkit.StartWatcher(t, client, ns, clientNode, nodePort).WaitReal(t, nodePort, replicas, 2*time.Minute)
	t.Logf("%s: IPVS virtual server %s (NodePort) has %d real servers", clientNode, nodePort, replicas)

	deletions := watchDeletions(t, client, ns, family)
	clientPod := startClient(t, client, ns, "client", vip, duration, clusterIPRate, 40000)
	nodePortPod := startClient(t, client, ns, "client-nodeport", nodePort, duration, nodePortRate, 41000)
	time.Sleep(10 * time.Second) // the client's steady state before the update
	restart := time.Now()
	switch how {
	case "restart":
		rolloutRestart(t, client, ns)
	case "set-image":
		setImage(t, client, ns, serverImageV2)
	}
	waitRolledOut(t, client, ns, restart)
	t.Logf("%s done in %v", how, time.Since(restart).Round(time.Second))
	rep := clientReport(t, client, ns, clientPod, duration)
	npRep := clientReport(t, client, ns, nodePortPod, duration)
	for name, r := range map[string]clientResult{"ClusterIP": rep, "NodePort": npRep} {
		if r.Summary.Requests == 0 {
			t.Fatalf("the %s client made no request", name)
		}
	}
	deletions.waitGone(watches[clientNode], time.Minute)
	report(t, fmt.Sprintf("%s; %s", row, update), kernel, rep, npRep, deletions.latencies(watches[clientNode]))
}

// parseDuration reads ROLLING_DURATION, how long the clients send requests (a Go
// duration; "": 150 s).
func parseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 150 * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("ROLLING_DURATION=%q: a Go duration above 0 (150s)", v)
	}
	return d, nil
}

// parseRate reads ROLLING_RATE, the clients' most requests per second together ("": 20),
// and splits it: a quarter (at least 1/s) through node-a's NodePort, the rest through the
// ClusterIP, which must have 1/s at least (rolling-client paces nothing at 0).
func parseRate(v string) (clusterIP, nodePort int, err error) {
	rate := 20
	if v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate < 2 {
			return 0, 0, fmt.Errorf("ROLLING_RATE=%q: requests per second, 2 at least", v)
		}
	}
	nodePort = max(rate/4, 1)
	return rate - nodePort, nodePort, nil
}

// parseFamily reads the Services' (single) IP family: IPv4 (also "") or IPv6 (the cluster
// is dual-stack: pods and nodes have both).
func parseFamily(v string) (corev1.IPFamily, error) {
	switch v {
	case "", "IPv4":
		return corev1.IPv4Protocol, nil
	case "IPv6":
		return corev1.IPv6Protocol, nil
	}
	return "", fmt.Errorf("ROLLING_FAMILY=%q: IPv4 or IPv6", v)
}

// familyOf says which family an address is of ("" when it is none).
func familyOf(addr string) corev1.IPFamily {
	switch ip := net.ParseIP(addr); {
	case ip == nil:
		return ""
	case ip.To4() != nil:
		return corev1.IPv4Protocol
	default:
		return corev1.IPv6Protocol
	}
}

// nodeIP is node's first InternalIP of family (its address on the nodes' L2).
func nodeIP(t *testing.T, client kubernetes.Interface, node string, family corev1.IPFamily) string {
	t.Helper()
	n, err := client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", node, err)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && familyOf(a.Address) == family {
			return a.Address
		}
	}
	t.Fatalf("node %s has no %s InternalIP: %v", node, family, n.Status.Addresses)
	return ""
}

// podIP is the pod's address of family ("" before it has one).
func podIP(p *corev1.Pod, family corev1.IPFamily) string {
	for _, ip := range p.Status.PodIPs {
		if familyOf(ip.IP) == family {
			return ip.IP
		}
	}
	return ""
}

// createService is a Service of type typ and one IP family over the test-server pods.
func createService(t *testing.T, client kubernetes.Interface, ns, name string, typ corev1.ServiceType, family corev1.IPFamily) *corev1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:           typ,
			IPFamilies:     []corev1.IPFamily{family},
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicySingleStack),
			Selector:       map[string]string{"app": "test-server"},
			Ports:          []corev1.ServicePort{{Name: "http", Port: servicePort, TargetPort: intstr.FromInt32(serverPort)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s (%s, %s): %v", ns, name, typ, family, err)
	}
	return svc
}

// setImage does what `kubectl set image deployment/test-server server=IMAGE` does.
func setImage(t *testing.T, client kubernetes.Interface, ns, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"server","image":%q}]}}}}`, image)
	if _, err := client.AppsV1().Deployments(ns).Patch(context.Background(), "test-server", "application/strategic-merge-patch+json",
		[]byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("set image deployment %s/test-server server=%s: %v", ns, image, err)
	}
}

// parsePreStop reads the old pods' preStop sleep in seconds ("": 0, none: test-server
// exits at SIGTERM and stops serving at once).
func parsePreStop(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	// The default termination grace (30 s) must outlast the sleep.
	if err != nil || n < 0 || n >= 30 {
		return 0, fmt.Errorf("ROLLING_PRESTOP=%q: seconds from 0 to 29", v)
	}
	return n, nil
}

// createDeployment makes the Deployment a user would: 3 replicas, a readiness probe, the
// default RollingUpdate strategy and termination grace; with preStop > 0 a preStop sleep,
// as users add so that a terminating pod keeps serving while proxies catch up (the
// endpoint is then terminating and serving, which the gate leaves as upstream does).
func createDeployment(t *testing.T, client kubernetes.Interface, ns string, preStop int64) {
	t.Helper()
	labels := map[string]string{"app": "test-server"}
	var lifecycle *corev1.Lifecycle
	if preStop > 0 {
		lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: preStop}}}
	}
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
						Lifecycle: lifecycle,
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
			// Back in IPVS: not gone (an earlier del is no removal to measure).
			w.live[c.Real] = true
			delete(w.gone, c.Real)
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

func watchDeletions(t *testing.T, client kubernetes.Interface, ns string, family corev1.IPFamily) *deletionWatch {
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
			if !ok || p.DeletionTimestamp == nil {
				continue
			}
			ip := podIP(p, family)
			if ip == "" {
				continue
			}
			d.mu.Lock()
			if ev.Type == watch.Deleted {
				d.removed[ip] = time.Now()
			}
			if _, seen := d.deleted[ip]; !seen {
				d.deleted[ip] = time.Now()
				d.names[ip] = p.Name
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
			if gone.Before(at) {
				// Two streams read on the host, each with its own delay: no latency to give.
				line = fmt.Sprintf("%s gone %.2f s before the test read its deletion", d.names[ip], at.Sub(gone).Seconds())
			}
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

// podObjectGone says when the real server went relative to the pod object's removal
// (with the gate ours removes it when the endpoint stops serving, before the kubelet
// deletes the pod object).
func podObjectGone(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf(" (%.2f s before the pod object went)", -d.Seconds())
	}
	return fmt.Sprintf(" (%.2f s after the pod object went)", d.Seconds())
}

func startClient(t *testing.T, client kubernetes.Interface, ns, name, target string, d time.Duration, rate, firstPort int) *corev1.Pod {
	t.Helper()
	return createRunning(t, client, ns, basePod(name, clientNode, "client", "-target", target, "-duration", d.String(),
		"-rate", fmt.Sprint(rate), "-first-port", fmt.Sprint(firstPort)))
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

// reportHeader is the report table's header, as scenario-rolling.sh writes it.
const reportHeader = "| row | ip_vs on node-a | requests (ClusterIP) | failed | slow >1 s | failure window | requests (NodePort) | failed | failure window | pod deletion -> real server gone (node-a) |"

// report logs the row and appends it to $ROLLING_REPORT (markdown) when set.
func report(t *testing.T, row string, kernel podkit.IPVSKernel, rep, np clientResult, latencies []string) {
	window := func(s results.Summary) string {
		if len(s.Windows) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f s (longest)", s.Longest.Length().Seconds())
	}
	s, n := rep.Summary, np.Summary
	line := fmt.Sprintf("| %s | %s | %d | %d | %d | %s | %d | %d | %s | %s |", row, kernel, s.Requests, s.Failed, s.SlowOK, window(s),
		n.Requests, n.Failed, window(n), strings.Join(latencies, "; "))
	t.Logf("%s\n%s", reportHeader, line)
	for name, r := range map[string]clientResult{"ClusterIP": rep, "NodePort": np} {
		for _, f := range r.Failures {
			t.Logf("%s failed: start %v dur %v port %d kind %s: %s", name, f.Start.Round(time.Millisecond), f.Dur.Round(time.Millisecond), f.Port, f.Kind, f.Err)
		}
		for _, f := range r.Slow {
			t.Logf("%s slow: start %v dur %v port %d pod %s", name, f.Start.Round(time.Millisecond), f.Dur.Round(time.Millisecond), f.Port, f.Pod)
		}
	}
	podkit.AppendReport(t, "ROLLING_REPORT", line)
}
