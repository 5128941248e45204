//go:build cluster

package swap

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

const (
	clientNode = "node-a"
	replicas   = 3
	streams    = 4
	// settle is the quiet time around each step (traffic before, state read after).
	settle = 20 * time.Second
)

// step is one thing the test did, on the host clock.
type step struct {
	what       string
	start, end time.Time
}

func TestImageSwap(t *testing.T) {
	client := kubeclient.New(t)
	way := strings.Fields(kubeclient.Env(t, "SWAP_WAY"))
	out := kubeclient.Env(t, "SWAP_OUT")
	duration := 600 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SWAP_DURATION")); err == nil {
		duration = d
	}
	if img := podkit.ProxyImage(t, client); img != podkit.UpstreamImage {
		t.Fatalf("kube-proxy runs %s, want upstream's %s before the swap (addon.sh upstream)", img, podkit.UpstreamImage)
	}
	ns := kubeclient.Namespace(t, client, "swap")
	svc := createService(t, client, ns)
	httpVIP := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	echoVIP := net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(podkit.EchoPort))
	createDeployment(t, client, ns)
	watch := podkit.StartWatcher(t, client, ns, clientNode, httpVIP, echoVIP)
	watch.WaitReal(t, httpVIP, replicas, podkit.PodTimeout)
	watch.WaitReal(t, echoVIP, replicas, time.Minute)

	states := map[string]map[string]string{"upstream": podkit.NodeState(t, client, ns, clientNode, "state-upstream")}
	podkit.SaveState(t, filepath.Join(out, "state-upstream"), states["upstream"])

	podkit.StartClient(t, client, ns, "client", clientNode, httpVIP, duration, 20)
	holder := podkit.StartHolder(t, client, ns, "hold", clientNode, "-target", echoVIP, "-conns", fmt.Sprint(streams))
	kubeclient.Eventually(t, time.Minute, fmt.Sprintf("%d long-lived connections open", streams), func(context.Context) (bool, error) {
		return len(holder.Open()) == streams, nil
	})
	for _, e := range holder.Open() {
		t.Logf("long-lived connection %s to pod %s", e.Conn, e.Pod)
	}
	clientStart := time.Now()
	time.Sleep(settle)

	var steps []step
	run := func(what string, args ...string) {
		s := step{what: what, start: time.Now()}
		podkit.Addon(t, client, args...)
		s.end = time.Now()
		steps = append(steps, s)
		t.Logf("%s: %.1f s (image %s)", what, s.end.Sub(s.start).Seconds(), podkit.ProxyImage(t, client))
		time.Sleep(settle)
	}
	run("swap: addon.sh "+strings.Join(way, " "), way...)
	states["ours, gate off"] = podkit.NodeState(t, client, ns, clientNode, "state-ours-gate-off")
	podkit.SaveState(t, filepath.Join(out, "state-ours-gate-off"), states["ours, gate off"])
	run("gate on: addon.sh gate-on", "gate-on")
	if left := duration - time.Since(clientStart); left < 0 {
		t.Errorf("the client's %v ended before the steps were done and settled: raise SWAP_DURATION", duration)
	}
	states["ours, gate on"] = podkit.NodeState(t, client, ns, clientNode, "state-ours-gate-on")
	podkit.SaveState(t, filepath.Join(out, "state-ours-gate-on"), states["ours, gate on"])

	rep := podkit.WaitClientReport(t, client, ns, "client", duration+podkit.PodTimeout)
	cut := connectionsCut(t, holder)
	leftovers := compare(t, states, podkit.LoadState(t, os.Getenv("SWAP_BASELINE")))
	writeRun(t, out, rep, holder, watch, steps)
	report(t, rep, cut, steps, leftovers)
	if rep.Summary.Failed > 0 {
		t.Errorf("%d of %d requests failed during the swap", rep.Summary.Failed, rep.Summary.Requests)
	}
	if len(cut) > 0 {
		t.Errorf("%d of %d long-lived connections cut: %s", len(cut), streams, strings.Join(cut, "; "))
	}
}

// TestBaseline saves node-a's state as kube-proxy leaves it now, to $SWAP_SAVE_BASELINE:
// run on a cluster that has only ever run ours, it is what ours alone makes.
func TestBaseline(t *testing.T) {
	client := kubeclient.New(t)
	dir := kubeclient.Env(t, "SWAP_SAVE_BASELINE")
	if img := podkit.ProxyImage(t, client); img == podkit.UpstreamImage {
		t.Fatalf("kube-proxy runs upstream's %s: the baseline is ours alone", img)
	}
	// The same workload as TestImageSwap's: some rules exist only while a Service has
	// endpoints on the node (KUBE-LOOP-BACK's MASQUERADE, in ours and upstream alike).
	ns := kubeclient.Namespace(t, client, "swap-baseline")
	svc := createService(t, client, ns)
	createDeployment(t, client, ns)
	watch := podkit.StartWatcher(t, client, ns, clientNode, net.JoinHostPort(svc.Spec.ClusterIP, "80"))
	watch.WaitReal(t, net.JoinHostPort(svc.Spec.ClusterIP, "80"), replicas, podkit.PodTimeout)
	state := podkit.NodeState(t, client, ns, clientNode, "state-baseline")
	podkit.SaveState(t, dir, state)
	for part, text := range state {
		t.Logf("%s:\n%s", part, text)
	}
}

func createService(t *testing.T, client kubernetes.Interface, ns string) *corev1.Service {
	t.Helper()
	svc, err := client.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "test-server"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "test-server"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(podkit.HTTPPort)},
				{Name: "echo", Port: podkit.EchoPort, TargetPort: intstr.FromInt32(podkit.EchoPort)},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s/test-server: %v", ns, err)
	}
	return svc
}

func createDeployment(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	labels := map[string]string{"app": "test-server"}
	pod := podkit.ServerPod("", "", labels)
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "test-server"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod.Spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s/test-server: %v", ns, err)
	}
}

// connectionsCut lists the long-lived connections that failed or hang without answers.
func connectionsCut(t *testing.T, holder *podkit.Holder) []string {
	var cut []string
	for conn, e := range holder.Failed() {
		cut = append(cut, fmt.Sprintf("%s to pod %s: %s at %s after %d lines (%s)", conn, e.Pod, e.Kind, e.Read.Format("15:04:05.000"), e.Lines, e.Err))
	}
	for conn, e := range holder.Stalled() {
		cut = append(cut, fmt.Sprintf("%s to pod %s: no answer since %s", conn, e.Pod, e.Read.Format("15:04:05.000")))
	}
	sort.Strings(cut)
	for _, e := range holder.Events() {
		if e.Event != "open" {
			t.Logf("long-lived connection %s: %s at %s (%d lines) %s", e.Conn, e.Event, e.Read.Format("15:04:05.000"), e.Lines, e.Err)
		}
	}
	return cut
}

// compare reports how node-a's state changed across the swap and, with a baseline of
// ours alone, what the end state has that ours alone does not make (leftovers) and
// lacks. IPVS is compared by virtual-server count only: the Services differ between runs.
func compare(t *testing.T, states map[string]map[string]string, baseline map[string]string) []string {
	end := states["ours, gate on"]
	var out []string
	for _, part := range []string{"iptables-legacy", "ip6tables-legacy", "ipset"} {
		before, after := lines(part, states["upstream"][part]), lines(part, end[part])
		gone, added := diff(before, after)
		t.Logf("%s, upstream -> ours with the gate: %d lines -> %d; gone %q; added %q", part, len(before), len(after), gone, added)
		out = append(out, fmt.Sprintf("%s: upstream %d, ours after the swap %d lines (gone %d, added %d)", part, len(before), len(after), len(gone), len(added)))
		if baseline == nil {
			continue
		}
		extra, missing := diff(lines(part, baseline[part]), after)
		missing, extra = extra, missing
		t.Logf("%s, after the swap vs ours alone: leftovers %q; missing %q", part, extra, missing)
		if len(extra) > 0 || len(missing) > 0 {
			out = append(out, fmt.Sprintf("**%s vs ours alone: leftovers %q, missing %q**", part, extra, missing))
		}
	}
	out = append(out, ipvsSummary(t, "upstream", states["upstream"]["ipvs"]), ipvsSummary(t, "ours, gate on", end["ipvs"]))
	return out
}

func lines(part, text string) []string {
	if part == "ipset" {
		return strings.Fields(text)
	}
	return podkit.Rules(text)
}

// diff returns the lines of a not in b and of b not in a.
func diff(a, b []string) (onlyA, onlyB []string) {
	for _, l := range a {
		if !slices.Contains(b, l) {
			onlyA = append(onlyA, l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			onlyB = append(onlyB, l)
		}
	}
	return onlyA, onlyB
}

// ipvsSummary counts the virtual servers and the weight-0 real servers of a dump.
func ipvsSummary(t *testing.T, name, dump string) string {
	table, err := podkit.ParseIPVSDump(dump)
	if err != nil {
		return fmt.Sprintf("IPVS %s: unreadable (%v)", name, err)
	}
	var zero []string
	reals := 0
	for _, v := range table.Virtual {
		for _, r := range v.Real {
			reals++
			if r.Weight == 0 {
				zero = append(zero, fmt.Sprintf("%s %s -> %s (ActiveConn %d, InActConn %d)", v.Protocol, v.Address, r.Address, r.Active, r.Inactive))
			}
		}
	}
	t.Logf("IPVS %s: %q", name, table.Lines())
	return fmt.Sprintf("IPVS %s: %d virtual servers, %d real servers, weight 0: %q", name, len(table.Virtual), reals, zero)
}

// writeRun saves the requests and the steps as a results.Run for the plot.
func writeRun(t *testing.T, out string, rep podkit.ClientReport, holder *podkit.Holder, watch *podkit.Watcher, steps []step) {
	var stamps []int64
	var reads []time.Time
	for _, e := range holder.Events() {
		stamps, reads = append(stamps, e.UnixNano), append(reads, e.Read)
	}
	offset := podkit.ClockOffset(stamps, reads)
	origin := rep.Origin().Add(offset) // on the host clock
	run := &results.Run{Scenario: "swap", Proxy: os.Getenv("SWAP_ROW"), Profile: "cluster", Requests: rep.Requests}
	for _, s := range steps {
		run.Events = append(run.Events,
			// Named for the plot's colours: orange when the old kube-proxy pods start
			// terminating, blue when the new ones are all ready.
			results.Event{At: s.start.Sub(origin), What: s.what + ": old kube-proxy pods terminating"},
			results.Event{At: s.end.Sub(origin), What: s.what + ": rolled out, new pods ready"})
	}
	run.Note(fmt.Sprintf("node-a clock offset (host - node, from the holder's lines) %v", offset.Round(time.Millisecond)))
	podkit.WriteRun(t, filepath.Join(out, "run.json"), run)
}

func report(t *testing.T, rep podkit.ClientReport, cut []string, steps []step, state []string) {
	s := rep.Summary
	var took []string
	for _, st := range steps {
		took = append(took, fmt.Sprintf("%s %.0f s", st.what, st.end.Sub(st.start).Seconds()))
	}
	window := "-"
	if len(s.Windows) > 0 {
		window = fmt.Sprintf("%.2f s (longest)", s.Longest.Length().Seconds())
	}
	cutCell := fmt.Sprintf("%d of %d", len(cut), streams)
	if len(cut) > 0 {
		cutCell += ": " + strings.Join(cut, "; ")
	}
	line := fmt.Sprintf("| %s | %d | %d | %s | %s | %s | %s |", os.Getenv("SWAP_ROW"), s.Requests, s.Failed, window, cutCell,
		strings.Join(took, "; "), strings.Join(state, "<br>"))
	t.Logf("| row | requests | failed | failure window | long-lived connections cut | steps | node-a state |\n%s", line)
	for _, f := range rep.Failures {
		t.Logf("failed: start %v dur %v port %d kind %s: %s", f.Start.Round(time.Millisecond), f.Dur.Round(time.Millisecond), f.Port, f.Kind, f.Err)
	}
	podkit.AppendReport(t, "SWAP_REPORT", line)
}
