//go:build cluster

package rolling

import (
	"io"
	"strings"
	"testing"
	"time"
)

// No cluster needed: go test -tags cluster -run TestLatencies ./test/cluster/rolling
//
// Both times are the host's reads of two streams (the pod watch, the watcher's log), each
// with its own latency: a real server read gone before the pod's deletion was read gives a
// negative "pod deletion -> real server gone", which the row must not print as a latency.
func TestLatenciesNegative(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	d := &deletionWatch{deleted: map[string]time.Time{"10.244.1.4": t0}, names: map[string]string{"10.244.1.4": "test-server-abc"},
		removed: map[string]time.Time{}}
	rs := &realServerWatch{gone: map[string]time.Time{"10.244.1.4:8080": t0.Add(-80 * time.Millisecond)}, live: map[string]bool{}}
	got := strings.Join(d.latencies(rs), "; ")
	if strings.Contains(got, "-0.08 s") || !strings.Contains(got, "before") {
		t.Errorf("latencies = %q; want the real server said gone before the deletion was read, not -0.08 s", got)
	}
}

// A real server that comes back (a del then an add: a watcher's failed read before
// rolling-client's fix, a virtual server rebuilt) is not gone: its first del must not
// stand as the removal waitGone and latencies read.
func TestRealServerBack(t *testing.T) {
	w := &realServerWatch{gone: map[string]time.Time{}, live: map[string]bool{}}
	lines := `{"Event":"add","Real":"[fd00:10:244:1::4]:8080","Weight":1}
{"Event":"del","Real":"[fd00:10:244:1::4]:8080","Weight":1}
{"Event":"add","Real":"[fd00:10:244:1::4]:8080","Weight":1}
`
	w.read(io.NopCloser(strings.NewReader(lines)))
	if at, ok := w.goneAt("[fd00:10:244:1::4]:8080"); ok {
		t.Errorf("real server back in IPVS read as gone at %v", at)
	}
	if w.count() != 1 {
		t.Errorf("live real servers: %d, want 1", w.count())
	}
	w.read(io.NopCloser(strings.NewReader(`{"Event":"del","Real":"[fd00:10:244:1::4]:8080"}` + "\n")))
	if _, ok := w.goneAt("[fd00:10:244:1::4]:8080"); !ok || w.count() != 0 {
		t.Errorf("real server deleted again: not read as gone (%d live)", w.count())
	}
}
