//go:build cluster

package nodeloss

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/podkit"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

const (
	clientNode = "node-a"
	lostNode   = "node-b"
	conns      = 6
	// before is the traffic before the kill.
	before = 20 * time.Second
)

// timeline is when the test saw each step after the kill (zero: not seen).
type timeline struct {
	mu           sync.Mutex
	nodeNotReady time.Time
	nodeStatus   string
	epNotReady   map[string]time.Time // pod IP -> endpoint ready=false
}

func (tl *timeline) set(f func()) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	f()
}

func TestNodeLoss(t *testing.T) {
	client := kubeclient.New(t)
	kill := kubeclient.Env(t, "NODE_KILL_SH")
	after := 150 * time.Second
	if d, err := time.ParseDuration(os.Getenv("NODELOSS_AFTER")); err == nil {
		after = d
	}
	ns := kubeclient.Namespace(t, client, "nodeloss")
	svc := podkit.CreateService(t, client, ns, "nodeloss", podkit.ServerPorts())
	httpVIP := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	echoVIP := net.JoinHostPort(svc.Spec.ClusterIP, fmt.Sprint(podkit.EchoPort))
	servers := map[string]string{"server-b0": lostNode, "server-b1": lostNode, "server-a0": clientNode}
	for name, node := range servers {
		podkit.Create(t, client, ns, podkit.ServerPod(name, node, map[string]string{"app": "nodeloss"}))
	}
	podkit.WaitReady(t, client, ns, "server-b0", "server-b1", "server-a0")
	lostIPs := podIPs(t, client, ns, "server-b0", "server-b1")
	watch := podkit.StartWatcher(t, client, ns, clientNode, httpVIP, echoVIP)
	watch.WaitReal(t, httpVIP, 3, podkit.PodTimeout)
	watch.WaitReal(t, echoVIP, 3, time.Minute)

	holder := podkit.StartHolder(t, client, ns, "hold", clientNode, "-target", echoVIP, "-conns", fmt.Sprint(conns), "-reconnect")
	kubeclient.Eventually(t, time.Minute, fmt.Sprintf("%d long-lived connections open", conns), func(context.Context) (bool, error) {
		return len(holder.Open()) >= conns, nil
	})
	// The client runs from before the kill to past the watch after it.
	podkit.StartClient(t, client, ns, "client", clientNode, httpVIP, before+after+30*time.Second, 10)
	toLost := connsTo(holder.Open(), "server-b0", "server-b1")
	t.Logf("long-lived connections to node-b's pods: %v", toLost)
	time.Sleep(before)

	tl := &timeline{epNotReady: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pollNode(ctx, client, tl)
	go pollEndpoints(ctx, client, ns, lostIPs, tl)
	out, err := exec.Command(kill, lostNode).CombinedOutput()
	killed := time.Now()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", kill, lostNode, err, out)
	}
	t.Logf("%s", out)
	time.Sleep(after)
	cancel()

	rep := podkit.WaitClientReport(t, client, ns, "client", podkit.PodTimeout)
	row := summarize(t, killed, tl, watch, holder, rep, lostIPs, toLost, httpVIP, echoVIP)
	writeRun(t, rep, holder, killed, tl)
	podkit.AppendReport(t, "NODELOSS_REPORT", row)
}

func podIPs(t *testing.T, client kubernetes.Interface, ns string, names ...string) map[string]string {
	t.Helper()
	ips := map[string]string{}
	for _, n := range names {
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get pod %s/%s: %v", ns, n, err)
		}
		ips[p.Status.PodIP] = n
	}
	return ips
}

func connsTo(open map[string]podkit.HoldEvent, pods ...string) []string {
	var out []string
	for c, e := range open {
		for _, p := range pods {
			if e.Pod == p {
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// pollNode records when node-b's Ready condition leaves True.
func pollNode(ctx context.Context, client kubernetes.Interface, tl *timeline) {
	for ; ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		n, err := client.CoreV1().Nodes().Get(ctx, lostNode, metav1.GetOptions{})
		if err != nil {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				tl.set(func() {
					tl.nodeNotReady, tl.nodeStatus = time.Now(), string(c.Status)
				})
				return
			}
		}
	}
}

// pollEndpoints records when each of node-b's endpoints turns ready=false.
func pollEndpoints(ctx context.Context, client kubernetes.Interface, ns string, lost map[string]string, tl *timeline) {
	for ; ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=nodeloss"})
		if err != nil {
			continue
		}
		done := true
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				for _, a := range ep.Addresses {
					if _, ok := lost[a]; !ok {
						continue
					}
					if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
						tl.set(func() {
							if tl.epNotReady[a].IsZero() {
								tl.epNotReady[a] = time.Now()
							}
						})
					} else {
						done = false
					}
				}
			}
		}
		if done {
			return
		}
	}
}

func sinceKill(killed, at time.Time) string {
	if at.IsZero() {
		return "not seen"
	}
	return fmt.Sprintf("%.1f s", at.Sub(killed).Seconds())
}

// summarize builds the row: the controller's timings, node-a's IPVS, the long-lived
// connections to node-b and the new connections.
func summarize(t *testing.T, killed time.Time, tl *timeline, watch *podkit.Watcher, holder *podkit.Holder,
	rep podkit.ClientReport, lost map[string]string, toLost []string, httpVIP, echoVIP string) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var eps, reals []string
	var changes []realChange
	for ip, pod := range lost {
		eps = append(eps, fmt.Sprintf("%s %s", pod, sinceKill(killed, tl.epNotReady[ip])))
		for _, vip := range []string{httpVIP, echoVIP} {
			rs := net.JoinHostPort(ip, targetPort(vip))
			cell := fmt.Sprintf("%s :%s ", pod, targetPort(vip))
			zero, zeroed := watch.FirstWeightZero(vip, rs, killed)
			del, deleted := watch.First(vip, rs, "del", killed)
			switch {
			case deleted && zeroed && zero.Read.Before(del.Read):
				cell += fmt.Sprintf("weight 0 %s, deleted %s", sinceKill(killed, zero.Read), sinceKill(killed, del.Read))
			case deleted:
				cell += "deleted " + sinceKill(killed, del.Read)
			case zeroed:
				cell += "weight 0 " + sinceKill(killed, zero.Read)
			default:
				cell += "unchanged"
			}
			changes = append(changes, realChange{zero: zero.Read, zeroed: zeroed, del: del.Read, deleted: deleted})
			reals = append(reals, cell)
		}
	}
	sort.Strings(eps)
	sort.Strings(reals)

	failed := holder.Failed()
	stalled := holder.Stalled()
	var connCells []string
	for _, c := range toLost {
		switch e, ok := failed[c]; {
		case ok:
			connCells = append(connCells, fmt.Sprintf("%s %s", e.Kind, sinceKill(killed, e.Read)))
		case stalled[c].Event != "":
			connCells = append(connCells, "no answer, no error")
		default:
			connCells = append(connCells, "kept answering?")
		}
	}
	// New connections: reconnects that opened after the real servers changed, and failed
	// requests started after it.
	var reopenedLost, reopened int
	for _, e := range holder.Events() {
		if e.Event == "open" && e.Read.After(killed) {
			reopened++
			if e.Pod == "server-b0" || e.Pod == "server-b1" {
				reopenedLost++
			}
		}
	}
	origin := rep.Origin().Add(holderOffset(holder))
	settled, ok := ipvsSettled(changes)
	var failedAfterKill, failedAfterIPVS int
	for _, r := range rep.Requests {
		at := origin.Add(r.Start)
		if r.OK() || at.Before(killed) {
			continue
		}
		failedAfterKill++
		if ok && at.After(settled.Add(time.Second)) {
			failedAfterIPVS++
		}
	}
	afterIPVS := fmt.Sprintf("%d of them more than 1 s after node-b's last real server on node-a left service (weight 0 or deleted, %s)",
		failedAfterIPVS, sinceKill(killed, settled))
	if !ok {
		afterIPVS = "node-b's real servers on node-a did not all leave service"
	}
	nodeCell := fmt.Sprintf("%s (Ready=%s)", sinceKill(killed, tl.nodeNotReady), tl.nodeStatus)
	row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %d failed after the kill, %s; reconnects: %d, %d of them to node-b |",
		os.Getenv("NODELOSS_ROW"), nodeCell, strings.Join(eps, "; "), strings.Join(reals, "; "),
		fmt.Sprintf("%d connections: %s", len(toLost), strings.Join(connCells, "; ")),
		fmt.Sprintf("%d requests, %d failed", rep.Summary.Requests, rep.Summary.Failed), failedAfterKill, afterIPVS, reopened, reopenedLost)
	t.Logf("| row | kill -> node-b not Ready | kill -> endpoints ready=false | kill -> real servers on node-a | long-lived connections to node-b: error after the kill | client | new connections |\n%s", row)
	for _, e := range holder.Events() {
		t.Logf("hold %s %s pod %s %s lines %d %s (read %s)", e.Event, e.Conn, e.Pod, e.Kind, e.Lines, e.Err, e.Read.Format("15:04:05.000"))
	}
	return row
}

// realChange is what the watcher saw of one lost real server after the kill: its first
// weight 0 and its deletion.
type realChange struct {
	zero, del       time.Time
	zeroed, deleted bool
}

// ipvsSettled is when the last of the real servers left service (its first weight 0 or
// deletion: no new connection goes to it after); false when one never did.
func ipvsSettled(reals []realChange) (time.Time, bool) {
	var settled time.Time
	for _, r := range reals {
		var first time.Time
		switch {
		case r.zeroed && (!r.deleted || r.zero.Before(r.del)):
			first = r.zero
		case r.deleted:
			first = r.del
		default:
			return time.Time{}, false
		}
		if first.After(settled) {
			settled = first
		}
	}
	return settled, len(reals) > 0
}

// targetPort is the port of "VIP:port"; the Service's target ports equal its ports here
// (80 -> 8080 aside).
func targetPort(vip string) string {
	_, port, _ := net.SplitHostPort(vip)
	if port == "80" {
		return fmt.Sprint(podkit.HTTPPort)
	}
	return port
}

func holderOffset(holder *podkit.Holder) time.Duration {
	var stamps []int64
	var reads []time.Time
	for _, e := range holder.Events() {
		stamps, reads = append(stamps, e.UnixNano), append(reads, e.Read)
	}
	return podkit.ClockOffset(stamps, reads)
}

func writeRun(t *testing.T, rep podkit.ClientReport, holder *podkit.Holder, killed time.Time, tl *timeline) {
	out := os.Getenv("NODELOSS_OUT")
	if out == "" {
		return
	}
	origin := rep.Origin().Add(holderOffset(holder))
	run := &results.Run{Scenario: "node-loss", Proxy: os.Getenv("NODELOSS_ROW"), Profile: "cluster", Requests: rep.Requests}
	run.Events = append(run.Events, results.Event{At: killed.Sub(origin), What: "node-b killed"})
	if !tl.nodeNotReady.IsZero() {
		run.Events = append(run.Events, results.Event{At: tl.nodeNotReady.Sub(origin), What: "node-b not Ready"})
	}
	podkit.WriteRun(t, filepath.Join(out, "run.json"), run)
}
