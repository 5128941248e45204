package podkit

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// HoldEvent mirrors rolling-client hold's line (open, stall, resume, error, end), with
// the time the test read it.
type HoldEvent struct {
	Event, Conn, Target, Pod, Kind, Err string
	Lines                               int
	LastReplyUnixNano, UnixNano         int64
	Read                                time.Time `json:"-"`
}

// At is the event's time on the client node's clock.
func (e HoldEvent) At() time.Time { return time.Unix(0, e.UnixNano) }

// Holder is rolling-client hold in a pod, read as it prints.
type Holder struct {
	Pod    string
	mu     sync.Mutex
	events []HoldEvent
}

// StartHolder runs `rolling-client hold ARGS` in pod name on node.
func StartHolder(t testing.TB, client kubernetes.Interface, ns, name, node string, args ...string) *Holder {
	t.Helper()
	pod := ClientPod(name, node, append([]string{"hold"}, args...)...)
	CreateRunning(t, client, ns, pod)
	h := &Holder{Pod: name}
	Follow(t, client, ns, name, h.read)
	return h
}

func (h *Holder) read(line []byte, at time.Time) {
	var e HoldEvent
	if json.Unmarshal(line, &e) != nil || e.Event == "" {
		return
	}
	e.Read = at
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

// Events are the events read so far, in order.
func (h *Holder) Events() []HoldEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HoldEvent(nil), h.events...)
}

// Open is, for each connection that opened, its open event.
func (h *Holder) Open() map[string]HoldEvent {
	out := map[string]HoldEvent{}
	for _, e := range h.Events() {
		if e.Event == "open" {
			out[e.Conn] = e
		}
	}
	return out
}

// Failed is, for each connection that failed, its error event.
func (h *Holder) Failed() map[string]HoldEvent {
	out := map[string]HoldEvent{}
	for _, e := range h.Events() {
		if e.Event == "error" {
			out[e.Conn] = e
		}
	}
	return out
}

// Stalled is, for each connection whose last event is a stall, that event (no answer
// since).
func (h *Holder) Stalled() map[string]HoldEvent {
	out := map[string]HoldEvent{}
	for _, e := range h.Events() {
		switch e.Event {
		case "stall":
			out[e.Conn] = e
		default:
			delete(out, e.Conn)
		}
	}
	return out
}
