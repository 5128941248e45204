//go:build cluster

package swap

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// "none": the control row, upstream's image the whole time (same traffic, same time).
	control := len(way) == 1 && way[0] == "none"
	out := kubeclient.Env(t, "SWAP_OUT")
	duration := 600 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SWAP_DURATION")); err == nil {
		duration = d
	}
	if img := podkit.ProxyImage(t, client); img != podkit.UpstreamImage {
		t.Fatalf("kube-proxy runs %s, want upstream's %s before the swap (addon.sh upstream)", img, podkit.UpstreamImage)
	}
	ns := kubeclient.Namespace(t, client, "swap")
	svc := podkit.CreateService(t, client, ns, "test-server", podkit.ServerPorts())
	httpVIP := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	echoVIP := net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(podkit.EchoPort))
	createDeployment(t, client, ns)
	watch := podkit.StartWatcher(t, client, ns, clientNode, httpVIP, echoVIP)
	watch.WaitReal(t, httpVIP, replicas, podkit.PodTimeout)
	watch.WaitReal(t, echoVIP, replicas, time.Minute)

	start := saveState(t, client, ns, out, "upstream")

	podkit.StartClient(t, client, ns, "client", clientNode, httpVIP, duration, 20)
	holder := podkit.StartHolder(t, client, ns, "hold", clientNode, "-target", echoVIP, "-conns", fmt.Sprint(streams))
	kubeclient.Eventually(t, time.Minute, fmt.Sprintf("%d long-lived connections open", streams), func(context.Context) (bool, error) {
		return len(holder.Open()) == streams, nil
	})
	for _, e := range holder.Open() {
		t.Logf("long-lived connection %s to pod %s", e.Conn, e.Pod)
	}
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
	if control {
		// The same container work on node-a as a swap row (two kube-proxy rollouts, a
		// state-reading pod between them), with upstream's image throughout: failures that
		// go with pod starts on a TCG node show here too.
		run("restart: addon.sh restart", "restart")
		saveState(t, client, ns, out, "upstream-restarted")
		run("restart again: addon.sh restart", "restart")
		settled := time.Now() // run slept settle after the last step
		// Read during the traffic, as a swap row reads its state after the gate.
		end := saveState(t, client, ns, out, "upstream-end")
		rep := podkit.WaitClientReport(t, client, ns, "client", duration+podkit.PodTimeout)
		cut := connectionsCut(t, holder)
		state := compareAcross(t, "upstream at the start -> at the end", start, end)
		state = append(uncovered(t, rep, holder, settled), state...)
		writeRun(t, out, rep, holder, watch, steps)
		report(t, rep, cut, steps, state)
		// The control's failures are the floor the swap rows are read against, not an error.
		if len(cut) > 0 {
			t.Errorf("%d of %d long-lived connections cut with upstream's image alone: %s", len(cut), streams, strings.Join(cut, "; "))
		}
		return
	}
	run("swap: addon.sh "+strings.Join(way, " "), way...)
	saveState(t, client, ns, out, "ours-gate-off")
	run("gate on: addon.sh gate-on", "gate-on")
	settled := time.Now() // run slept settle after the last step
	end := saveState(t, client, ns, out, "ours-gate-on")

	rep := podkit.WaitClientReport(t, client, ns, "client", duration+podkit.PodTimeout)
	cut := connectionsCut(t, holder)
	state := compareAcross(t, "upstream -> ours after the gate", start, end)
	state = append(uncovered(t, rep, holder, settled), state...)
	// Ours alone, like for like: the same Services and pods, node-a cleaned and rebuilt by
	// ours from nothing (traffic over: the clean-up cuts every connection through node-a).
	if err := client.CoreV1().Pods(ns).Delete(context.Background(), "hold", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete pod %s/hold: %v", ns, err)
	}
	cleaned := time.Now()
	podkit.CleanProxyNode(t, client, ns, clientNode)
	// The watcher's lines come late: its real servers must have gone before they count again.
	kubeclient.Eventually(t, 2*time.Minute, "the watcher saw node-a's IPVS flushed", func(context.Context) (bool, error) {
		return watch.Seen(httpVIP, "del", cleaned), nil
	})
	watch.WaitReal(t, httpVIP, replicas, podkit.PodTimeout)
	watch.WaitReal(t, echoVIP, replicas, time.Minute)
	time.Sleep(settle)
	alone := saveState(t, client, ns, out, "ours-alone")
	leftovers, err := podkit.CompareStates(end, alone)
	if err != nil {
		t.Errorf("compare node-a's state after the swap with ours alone: %v", err)
	}
	state = append(state, leftoverLines(t, leftovers, err)...)
	state = append(state, ipvsSummary(t, "upstream", start["ipvs"]), ipvsSummary(t, "ours, gate on", end["ipvs"]))
	writeRun(t, out, rep, holder, watch, steps)
	report(t, rep, cut, steps, state)
	if rep.Summary.Failed > 0 {
		t.Errorf("%d of %d requests failed during the swap", rep.Summary.Failed, rep.Summary.Requests)
	}
	if len(cut) > 0 {
		t.Errorf("%d of %d long-lived connections cut: %s", len(cut), streams, strings.Join(cut, "; "))
	}
	if len(leftovers) > 0 {
		t.Errorf("node-a's state after the swap differs from ours alone: %+v", leftovers)
	}
}

// saveState reads node-a's state and saves it to OUT/state-NAME.
func saveState(t *testing.T, client kubernetes.Interface, ns, out, name string) map[string]string {
	state := podkit.NodeState(t, client, ns, clientNode, "state-"+name)
	podkit.SaveState(t, filepath.Join(out, "state-"+name), state)
	return state
}

// compareAcross sums up, part by part, how node-a's state changed from before to after.
func compareAcross(t *testing.T, what string, before, after map[string]string) []string {
	var out []string
	for _, part := range podkit.StateParts {
		b, err1 := podkit.StateLines(part, before[part])
		a, err2 := podkit.StateLines(part, after[part])
		if err1 != nil || err2 != nil {
			out = append(out, fmt.Sprintf("**%s, %s: unreadable (%v %v)**", part, what, err1, err2))
			continue
		}
		diffs, _ := podkit.CompareStates(map[string]string{part: after[part]}, map[string]string{part: before[part]})
		added, gone := 0, 0
		for _, d := range diffs {
			if d.Part == part {
				added, gone = len(d.Extra), len(d.Missing)
				t.Logf("%s, %s: gone %q; added %q", part, what, d.Missing, d.Extra)
			}
		}
		out = append(out, fmt.Sprintf("%s, %s: %d lines -> %d (gone %d, added %d)", part, what, len(b), len(a), gone, added))
	}
	return out
}

// leftoverLines is the report's cells for the comparison with ours alone: lines of the
// state after the swap that ours alone does not make (leftovers) and the reverse; err is
// CompareStates' (parts it could not read, left out of diffs: not compared, so not identical).
func leftoverLines(t *testing.T, diffs []podkit.StateDiff, err error) []string {
	if len(diffs) == 0 && err == nil {
		return []string{"after the swap = ours alone (cleaned and rebuilt on node-a): IPVS, iptables, ip6tables and ipsets identical"}
	}
	var out []string
	if err != nil {
		out = append(out, fmt.Sprintf("**vs ours alone: not compared: %s**", strings.ReplaceAll(err.Error(), "\n", "; ")))
	}
	for _, d := range diffs {
		t.Logf("%s, after the swap vs ours alone: leftovers %q; missing %q", d.Part, d.Extra, d.Missing)
		out = append(out, fmt.Sprintf("**%s vs ours alone: leftovers %q, missing %q**", d.Part, d.Extra, d.Missing))
	}
	return out
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

// holderOffset is node-a's clock offset (host - node) from the holder's lines.
func holderOffset(holder *podkit.Holder) time.Duration {
	var stamps []int64
	var reads []time.Time
	for _, e := range holder.Events() {
		stamps, reads = append(stamps, e.UnixNano), append(reads, e.Read)
	}
	return podkit.ClockOffset(stamps, reads)
}

// uncovered fails the row, and is its report's cell, when the client's requests ended
// before the last step had settled (a control row's floor as much as a swap's).
func uncovered(t *testing.T, rep podkit.ClientReport, holder *podkit.Holder, settled time.Time) []string {
	if err := clientCovered(rep, holderOffset(holder), settled); err != nil {
		t.Errorf("%v: raise SWAP_DURATION", err)
		return []string{"**" + err.Error() + ": its requests do not cover the steps**"}
	}
	return nil
}

// clientCovered is an error unless the client's last request started at or after until
// (host clock; offset is host - node).
func clientCovered(rep podkit.ClientReport, offset time.Duration, until time.Time) error {
	if len(rep.Requests) == 0 {
		return fmt.Errorf("the client's requests are not in its log")
	}
	var last time.Duration
	for _, r := range rep.Requests {
		last = max(last, r.Start)
	}
	if at := rep.Origin().Add(last).Add(offset); at.Before(until) {
		return fmt.Errorf("the client's last request started %.1f s before the last step had settled", until.Sub(at).Seconds())
	}
	return nil
}

// writeRun saves the requests and the steps as a results.Run for the plot.
func writeRun(t *testing.T, out string, rep podkit.ClientReport, holder *podkit.Holder, watch *podkit.Watcher, steps []step) {
	offset := holderOffset(holder)
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
