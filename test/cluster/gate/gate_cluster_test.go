//go:build cluster

package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
)

const (
	clientNode = "node-a"
	serverNode = "node-b"
	annotation = "ipvs-proxy.kubernetes.io/termination-policy"
	gateName   = "IPVSImmediateTermination"
	// observe is how long the test watches a removed endpoint's real server.
	observe = 30 * time.Second
)

// service is one of the two echo Services and what the test saw of it.
type service struct {
	name, annotation string // annotation "" for none
	immediate        bool   // the policy the gate and annotation give it
	vip              string
	conn             podkit.HoldEvent // the connection's open event
	removedIP        string
	labelChanged     time.Time
	leftSlice        time.Time
}

func TestGateAndAnnotation(t *testing.T) {
	client := kubeclient.New(t)
	gateOn := kubeclient.Env(t, "GATE_EXPECT") == "on"
	ns := kubeclient.Namespace(t, client, "gate")

	configz := checkConfigz(t, client, ns, gateOn)
	logLine := checkProxyLog(t, client, gateOn)

	svcs := []*service{{name: "annotated", annotation: "graceful", immediate: false}, {name: "plain", immediate: gateOn}}
	if !gateOn {
		svcs[0].annotation = "immediate"
		svcs[0].immediate = true
	}
	var vips []string
	for _, s := range svcs {
		s.vip = createService(t, client, ns, s)
		vips = append(vips, s.vip)
		for i := range 2 {
			podkit.Create(t, client, ns, podkit.ServerPod(fmt.Sprintf("%s-%d", s.name, i), serverNode, map[string]string{"s4": s.name}))
		}
	}
	for _, s := range svcs {
		podkit.WaitReady(t, client, ns, s.name+"-0", s.name+"-1")
	}
	watch := podkit.StartWatcher(t, client, ns, clientNode, vips...)
	for _, s := range svcs {
		watch.WaitReal(t, s.vip, 2, 2*time.Minute)
	}
	holder := podkit.StartHolder(t, client, ns, "hold", clientNode, "-target", vips[0], "-target", vips[1])
	kubeclient.Eventually(t, time.Minute, "a long-lived connection to each Service", func(context.Context) (bool, error) {
		return len(holder.Open()) == len(svcs), nil
	})
	for _, e := range holder.Open() {
		for _, s := range svcs {
			if e.Target == s.vip {
				s.conn = e
			}
		}
	}
	left := make([]<-chan time.Time, len(svcs))
	for i, s := range svcs {
		left[i] = watchLeftSlice(t, client, ns, s, connPodIP(t, client, ns, s))
		removeFromService(t, client, ns, s)
	}
	for i, s := range svcs {
		select {
		case s.leftSlice = <-left[i]:
		case <-time.After(time.Minute):
			t.Fatalf("endpoint %s still in service %s's EndpointSlices after 1m", s.removedIP, s.name)
		}
	}
	time.Sleep(observe)

	var rows []string
	for _, s := range svcs {
		rows = append(rows, check(t, s, watch, holder))
	}
	report(t, configz, logLine, rows)
}

// checkConfigz reads kube-proxy's /configz on node-a from a host-network busybox pod and
// checks the gate there; returns what it found.
func checkConfigz(t *testing.T, client kubernetes.Interface, ns string, gateOn bool) string {
	pod := podkit.HostPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "configz"},
		Spec: corev1.PodSpec{
			NodeName: clientNode, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "wget", Image: podkit.BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/busybox", "wget", "-qO-", "http://127.0.0.1:10249/configz"}}},
		},
	})
	body := podkit.RunToCompletion(t, client, ns, pod)["wget"]
	var cz map[string]struct {
		Mode         string
		FeatureGates map[string]bool
	}
	if err := json.Unmarshal([]byte(body), &cz); err != nil {
		t.Fatalf("decode /configz of kube-proxy on %s: %v: %s", clientNode, err, body)
	}
	cfg, ok := cz["kubeproxy.config.k8s.io"]
	if !ok {
		t.Fatalf("/configz of kube-proxy on %s has no kubeproxy.config.k8s.io: %s", clientNode, body)
	}
	got := cfg.FeatureGates[gateName]
	t.Logf("/configz on %s: mode %q featureGates %v", clientNode, cfg.Mode, cfg.FeatureGates)
	if cfg.Mode != "ipvs" || got != gateOn {
		t.Errorf("/configz on %s: mode %q, %s=%v; want ipvs, %v", clientNode, cfg.Mode, gateName, got, gateOn)
	}
	return fmt.Sprintf("mode %s, %s: %v", cfg.Mode, gateName, got)
}

var proxierLine = regexp.MustCompile(`"Using ipvs Proxier".*immediateTermination=(true|false)`)

// checkProxyLog finds kube-proxy's "Using ipvs Proxier" line on node-a and checks the gate.
func checkProxyLog(t *testing.T, client kubernetes.Interface, gateOn bool) string {
	pod := podkit.ProxyPod(t, client, clientNode)
	raw, err := client.CoreV1().Pods("kube-system").GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read the log of kube-system/%s: %v", pod.Name, err)
	}
	m := proxierLine.FindSubmatch(raw)
	if m == nil {
		t.Fatalf("kube-system/%s logged no \"Using ipvs Proxier\" line with immediateTermination", pod.Name)
	}
	t.Logf("kube-system/%s: %s", pod.Name, m[0])
	if (string(m[1]) == "true") != gateOn {
		t.Errorf("kube-system/%s: immediateTermination=%s, want %v", pod.Name, m[1], gateOn)
	}
	return "immediateTermination=" + string(m[1])
}

func createService(t *testing.T, client kubernetes.Interface, ns string, s *service) string {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"s4": s.name},
			Ports:    []corev1.ServicePort{{Name: "echo", Port: podkit.EchoPort, TargetPort: intstr.FromInt32(podkit.EchoPort)}},
		},
	}
	if s.annotation != "" {
		svc.Annotations = map[string]string{annotation: s.annotation}
	}
	created, err := client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/%s: %v", ns, s.name, err)
	}
	return net.JoinHostPort(created.Spec.ClusterIP, fmt.Sprint(podkit.EchoPort))
}

// connPodIP records and returns the address of the pod the Service's connection reached.
func connPodIP(t *testing.T, client kubernetes.Interface, ns string, s *service) string {
	t.Helper()
	p, err := client.CoreV1().Pods(ns).Get(context.Background(), s.conn.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s (the connection's): %v", ns, s.conn.Pod, err)
	}
	s.removedIP = p.Status.PodIP
	return s.removedIP
}

// removeFromService relabels the pod the Service's connection reached: its endpoint
// leaves the Service while the pod and the connection stay up.
func removeFromService(t *testing.T, client kubernetes.Interface, ns string, s *service) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{"s4":"removed-from-%s"}}}`, s.name)
	if _, err := client.CoreV1().Pods(ns).Patch(context.Background(), s.conn.Pod, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("relabel pod %s/%s: %v", ns, s.conn.Pod, err)
	}
	s.labelChanged = time.Now()
}

// watchLeftSlice watches the Service's EndpointSlices (started before the relabel, so no
// event is missed) and sends the instant an event shows none of them holding the relabelled
// pod's address. A 200 ms poll read it up to a poll plus a List late, so the real server's
// change on node-a could look like it came before the endpoint left (negative times).
func watchLeftSlice(t *testing.T, client kubernetes.Interface, ns string, s *service, ip string) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w, err := client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + s.name})
	if err != nil {
		cancel()
		t.Fatalf("watch endpointslices of service %s/%s: %v", ns, s.name, err)
	}
	out := make(chan time.Time, 1)
	go func() {
		defer cancel()
		defer w.Stop()
		held := map[string]bool{} // slice name -> holds the pod's address
		for ev := range w.ResultChan() {
			sl, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			held[sl.Name] = ev.Type != "DELETED" && holdsAddress(sl, ip)
			if !anyTrue(held) {
				out <- time.Now()
				return
			}
		}
	}()
	return out
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

func holdsAddress(sl *discoveryv1.EndpointSlice, ip string) bool {
	for _, ep := range sl.Endpoints {
		if slices.Contains(ep.Addresses, ip) {
			return true
		}
	}
	return false
}

// check compares what node-a's IPVS and the connection did with the Service's policy
// and returns the report's cells for it.
func check(t *testing.T, s *service, watch *podkit.Watcher, holder *podkit.Holder) string {
	real := net.JoinHostPort(s.removedIP, fmt.Sprint(podkit.EchoPort))
	policy := "graceful"
	if s.immediate {
		policy = "immediate"
	}
	annot := "none"
	if s.annotation != "" {
		annot = s.annotation
	}
	var ipvs string
	del, deleted := watch.First(s.vip, real, "del", s.labelChanged)
	zero, zeroed := watch.FirstWeightZero(s.vip, real, s.labelChanged)
	switch {
	case deleted && zeroed:
		ipvs = fmt.Sprintf("weight 0 after %s, deleted after %s", since(s.leftSlice, zero.Read), since(s.leftSlice, del.Read))
	case deleted:
		ipvs = fmt.Sprintf("deleted after %s", since(s.leftSlice, del.Read))
	case zeroed:
		live := watch.Live(s.vip)[real]
		ipvs = fmt.Sprintf("weight 0 after %s, still there %v later (ActiveConn %d)", since(s.leftSlice, zero.Read), observe, live.Active)
	default:
		ipvs = "unchanged"
	}
	connection := "kept answering"
	if e, ok := holder.Failed()[s.conn.Conn]; ok {
		connection = fmt.Sprintf("%s %s after the endpoint left (%d lines answered)", e.Kind, since(s.leftSlice, e.Read), e.Lines)
	} else if e, ok := holder.Stalled()[s.conn.Conn]; ok {
		connection = fmt.Sprintf("no answer since %s after the endpoint left", since(s.leftSlice, e.Read))
	}
	t.Logf("service %s (annotation %s, policy %s): pod %s, real server %s: %s; connection %s", s.name, annot, policy, s.conn.Pod, real, ipvs, connection)
	if s.immediate && !immediateDeleted(zeroed, deleted, zero, del) {
		t.Errorf("service %s (policy immediate): real server %s not deleted without a weight-0 stage within %v of its endpoint leaving: %s", s.name, real, observe, ipvs)
	}
	if !s.immediate {
		if !zeroed || deleted {
			t.Errorf("service %s (policy graceful): real server %s: want weight 0 and kept while the connection is open, got %s", s.name, real, ipvs)
		}
		if connection != "kept answering" {
			t.Errorf("service %s (policy graceful): the connection to %s: %s", s.name, s.conn.Pod, connection)
		}
	}
	return fmt.Sprintf("%s (annotation %s) | %s | %s | %s", s.name, annot, policy, ipvs, connection)
}

// immediateDeleted is whether the real server went as policy immediate has it: deleted,
// with no weight-0 stage before.
func immediateDeleted(zeroed, deleted bool, zero, del podkit.Change) bool {
	return deleted && !(zeroed && zero.Read.Before(del.Read))
}

func since(from, to time.Time) string { return fmt.Sprintf("%.2f s", to.Sub(from).Seconds()) }

// report logs the rows and appends them to $GATE_REPORT when set.
func report(t *testing.T, configz, logLine string, rows []string) {
	row := os.Getenv("GATE_ROW")
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s |", row, configz, logLine, r))
	}
	t.Logf("| row | /configz (node-a) | kube-proxy log | Service | policy | endpoint left the slice -> real server on node-a | long-lived connection |\n%s", strings.Join(lines, "\n"))
	if path := os.Getenv("GATE_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("open report %s: %v", path, err)
		}
		defer f.Close()
		fmt.Fprintln(f, strings.Join(lines, "\n"))
	}
}
