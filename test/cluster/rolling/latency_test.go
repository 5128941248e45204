//go:build cluster

package rolling

import (
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
