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
	pod := HostPod(ClientPod("ipvs-watch-"+node, node, args...))
	CreateRunning(t, client, ns, pod)
	w := &Watcher{Node: node, live: map[string]map[string]Change{}}
	Follow(t, client, ns, pod.Name, w.read)
	return w
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

// WaitReal waits until vip has n real servers at weight 1 on the watcher's node.
func (w *Watcher) WaitReal(t testing.TB, vip string, n int, timeout time.Duration) {
	t.Helper()
	kubeclient.Eventually(t, timeout, fmt.Sprintf("IPVS virtual server %s with %d real servers at weight 1 on %s", vip, n, w.Node),
		func(context.Context) (bool, error) {
			up := 0
			for _, c := range w.Live(vip) {
				if c.Weight > 0 {
					up++
				}
			}
			return up == n, nil
		})
}
