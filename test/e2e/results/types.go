// Package results holds what the e2e scenarios measure (requests, events, runs), the
// figures computed from them (failed requests, failure windows, sync latency), and the
// report: text tables, a Markdown document and an SVG plot. It is pure Go, used by the
// driver inside the VM and by the report tool on the host.
package results

import "time"

// Request is one client request of a load run.
type Request struct {
	Seq int `json:"seq"`
	// Start and Dur are relative to the run's origin.
	Start time.Duration `json:"start"`
	Dur   time.Duration `json:"dur"`
	Port  int           `json:"port"`
	// Pod is the pod that answered (empty when the request failed).
	Pod string `json:"pod,omitempty"`
	// Kind is "ok" or the failure's class: connect-timeout, refused, unreachable,
	// reset, port-busy, read-timeout, eof, bad-response.
	Kind string `json:"kind"`
	Err  string `json:"err,omitempty"`
	// BusyPorts counts the ports tried first that were still closing their previous
	// connection (nothing was sent from them).
	BusyPorts int `json:"busyPorts,omitempty"`
}

// OK reports whether the request succeeded.
func (r Request) OK() bool { return r.Kind == KindOK }

// End is when the request finished, relative to the run's origin.
func (r Request) End() time.Duration { return r.Start + r.Dur }

// Request kinds.
const (
	KindOK             = "ok"
	KindConnectTimeout = "connect-timeout"
	KindRefused        = "refused"
	KindUnreachable    = "unreachable"
	KindReset          = "reset"
	KindPortBusy       = "port-busy"
	KindReadTimeout    = "read-timeout"
	KindEOF            = "eof"
	KindBadResponse    = "bad-response"
	KindOther          = "other"
)

// Event is a step of a scenario (an API write, a pod killed...), relative to the origin.
type Event struct {
	At   time.Duration `json:"at"`
	What string        `json:"what"`
	// SyncLatency is the time from this API write until the kernel reflected it
	// (zero when not measured).
	SyncLatency time.Duration `json:"syncLatency,omitempty"`
}
