package podkit

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

// Change mirrors rolling-client's watcher line: a real server added, deleted,
// reweighted, or its connection counts at weight 0, with the time the test read it.
type Change struct {
	Event, Virtual, Real string
	Weight               int
	Active, Inactive     int
	UnixNano             int64
	// Read is when the test read the line (host clock; the log stream adds its latency).
	Read time.Time `json:"-"`
}

// Watcher is rolling-client watch on a node's host network, read as it prints.
type Watcher struct {
	Node    string
	client  kubernetes.Interface
	ns      string
	args    []string
	starts  int
	mu      sync.Mutex
	changes []Change
	live    map[string]map[string]Change // virtual -> real -> last change
}

// StartWatcher runs the IPVS watcher for virtual servers vips ("VIP:port") on node.
func StartWatcher(t testing.TB, client kubernetes.Interface, ns, node string, vips ...string) *Watcher {
	t.Helper()
	args := []string{"watch"}
	for _, v := range vips {
		args = append(args, "-vip", v)
	}
	w := &Watcher{Node: node, client: client, ns: ns, args: args, live: map[string]map[string]Change{}}
	w.start(t)
	return w
}

// start runs the watcher's pod (again: a new pod, its lines read into the same Watcher).
func (w *Watcher) start(t testing.TB) {
	t.Helper()
	w.starts++
	name := fmt.Sprintf("ipvs-watch-%s-%d", w.Node, w.starts)
	CreateRunning(t, w.client, w.ns, HostPod(ClientPod(name, w.Node, w.args...)))
	Follow(t, w.client, w.ns, name, w.read)
}

func (w *Watcher) read(line []byte, at time.Time) {
	var c Change
	if json.Unmarshal(line, &c) != nil || c.Event == "" {
		return
	}
	c.Read = at
	w.mu.Lock()
	defer w.mu.Unlock()
	w.changes = append(w.changes, c)
	if w.live[c.Virtual] == nil {
		w.live[c.Virtual] = map[string]Change{}
	}
	if c.Event == "del" {
		delete(w.live[c.Virtual], c.Real)
	} else {
		w.live[c.Virtual][c.Real] = c
	}
}

// Live is the real servers of virtual server vip now, with their last state.
func (w *Watcher) Live(vip string) map[string]Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]Change{}
	for rs, c := range w.live[vip] {
		out[rs] = c
	}
	return out
}

// First is the first change of real server real of vip, of kind event (any when ""),
// read after since.
func (w *Watcher) First(vip, real, event string, since time.Time) (Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.Virtual == vip && c.Real == real && (event == "" || c.Event == event) && !c.Read.Before(since) {
			return c, true
		}
	}
	return Change{}, false
}

// Seen reports whether a change of kind event of vip was read after since.
func (w *Watcher) Seen(vip, event string, since time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.Virtual == vip && c.Event == event && !c.Read.Before(since) {
			return true
		}
	}
	return false
}

// FirstWeightZero is the first change that left real server real of vip at weight 0
// after since.
func (w *Watcher) FirstWeightZero(vip, real string, since time.Time) (Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.Virtual == vip && c.Real == real && c.Event == "weight" && c.Weight == 0 && !c.Read.Before(since) {
			return c, true
		}
	}
	return Change{}, false
}

// silentAfter is how long WaitReal lets a watcher print nothing before it starts another:
// once, started while kube-proxy was being replaced on its node, a watcher printed
// nothing for minutes while IPVS had the real servers (a fresh one printed them at once).
const silentAfter = 90 * time.Second

// WaitReal waits until vip has n real servers at weight 1 on the watcher's node; a
// watcher that has printed nothing for silentAfter is replaced once.
func (w *Watcher) WaitReal(t testing.TB, vip string, n int, timeout time.Duration) {
	t.Helper()
	since := time.Now()
	kubeclient.Eventually(t, timeout, fmt.Sprintf("IPVS virtual server %s with %d real servers at weight 1 on %s", vip, n, w.Node),
		func(context.Context) (bool, error) {
			if w.silent() && w.starts == 1 && time.Since(since) > silentAfter {
				t.Logf("IPVS watcher on %s printed nothing in %v: starting another", w.Node, silentAfter)
				w.start(t)
			}
			up := 0
			for _, c := range w.Live(vip) {
				if c.Weight > 0 {
					up++
				}
			}
			return up == n, nil
		})
}

func (w *Watcher) silent() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.changes) == 0
}
