package podkit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// ClientReport mirrors rolling-client client's report, with every request (-all).
type ClientReport struct {
	Summary        results.Summary
	Failures       []results.Request
	Slow           []results.Request
	OriginUnixNano int64
	Requests       []results.Request `json:"-"`
}

// Origin is when the client started (its node's clock): the requests' Start is relative to it.
func (r ClientReport) Origin() time.Time { return time.Unix(0, r.OriginUnixNano) }

// StartClient runs the HTTP client (rolling-client client -all: source ports reused,
// rate requests/s at most) against vip from node for d.
func StartClient(t testing.TB, client kubernetes.Interface, ns, name, node, vip string, d time.Duration, rate int) {
	t.Helper()
	CreateRunning(t, client, ns, ClientPod(name, node, "client", "-target", vip, "-duration", d.String(),
		"-rate", fmt.Sprint(rate), "-all"))
}

// WaitClientReport waits for client pod name to finish and decodes its report.
func WaitClientReport(t testing.TB, client kubernetes.Interface, ns, name string, timeout time.Duration) ClientReport {
	t.Helper()
	kubeclient.Eventually(t, timeout, "client pod "+ns+"/"+name+" finished", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == corev1.PodFailed {
			raw, _ := client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
			t.Fatalf("client pod %s/%s failed: %s", ns, name, raw)
		}
		return p.Status.Phase == corev1.PodSucceeded, nil
	})
	raw, err := client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("read the log of pod %s/%s: %v", ns, name, err)
	}
	var rep ClientReport
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rep) == nil {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("no report in the log of pod %s/%s: %.2000s", ns, name, raw)
	}
	runs, err := results.DecodeLog(strings.NewReader(string(raw)))
	if err != nil || len(runs) != 1 {
		t.Fatalf("decode the requests in the log of pod %s/%s: %d runs, %v", ns, name, len(runs), err)
	}
	rep.Requests = runs[0].Requests
	if rep.OriginUnixNano == 0 {
		rep.OriginUnixNano = containerStart(t, client, ns, name).UnixNano()
	}
	if rep.Summary.Requests == 0 {
		t.Fatalf("client pod %s/%s made no request", ns, name)
	}
	return rep
}

// ClockOffset estimates host time minus node time from lines stamped on the node
// (UnixNano) and read on the host (Read): the smallest difference (the log stream only
// adds latency).
func ClockOffset(stamps []int64, reads []time.Time) time.Duration {
	var best time.Duration
	for i := range stamps {
		d := reads[i].Sub(time.Unix(0, stamps[i]))
		if i == 0 || d < best {
			best = d
		}
	}
	return best
}

// WriteRun writes a results.Run (requests and the scenario's events, for the plot) as
// JSON to path.
func WriteRun(t testing.TB, path string, run *results.Run) {
	t.Helper()
	b, err := json.Marshal(run)
	if err != nil {
		t.Fatalf("encode run %s: %v", run.Key(), err)
	}
	if err := writeFile(path, b); err != nil {
		t.Fatalf("write run %s: %v", path, err)
	}
}

// containerStart is when pod name's container started, as its kubelet reported it (the
// node's clock, to the second): the origin of a client image older than OriginUnixNano.
func containerStart(t testing.TB, client kubernetes.Interface, ns, name string) time.Time {
	t.Helper()
	p, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("start time of pod %s/%s: %v", ns, name, err)
	}
	return p.Status.ContainerStatuses[0].State.Terminated.StartedAt.Time
}
