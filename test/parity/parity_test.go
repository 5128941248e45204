package parity

import (
	"flag"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// How many seeds TestParityGenerated runs (seeds 1..N), each compared with
// the IPVSImmediateTermination gate off and on: about 45 ms a scenario on
// the development machine, most of it upstream's conntrack table dumps.
const (
	defaultScenarios = 200
	shortScenarios   = 40
)

// TestParityGenerated compares the two proxiers on seeded random clusters.
// PARITY_SEED=n runs only seed n; PARITY_SCENARIOS=n runs seeds 1..n;
// PARITY_LOGS=1 keeps both proxiers' logs.
func TestParityGenerated(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	quietLogs()
	first, last := seedRange(t)
	begin := time.Now()
	var updates, syncs int
	accepted := map[string]int{}
	for seed := first; seed <= last; seed++ {
		sc := generate(seed)
		updates += len(sc.steps) - 1
		t.Run(sc.name, func(t *testing.T) {
			res := runScenario(t, sc, deliberateDifferences(), nil)
			syncs += res.syncs
			for name, n := range res.accepted {
				accepted[name] += n
			}
		})
	}
	t.Logf("%d scenarios (seeds %d..%d), %d updates: %d syncs of upstream compared with ours, gate off and on, in %v",
		last-first+1, first, last, updates, syncs, time.Since(begin).Round(time.Millisecond))
	for _, name := range slices.Sorted(maps.Keys(accepted)) {
		t.Logf("  accepted %d diff lines: %s", accepted[name], name)
	}
}

func seedRange(t *testing.T) (first, last uint64) {
	if s := os.Getenv("PARITY_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil || seed == 0 {
			t.Fatalf("PARITY_SEED=%q: want a positive integer", s)
		}
		return seed, seed
	}
	n := uint64(defaultScenarios)
	if testing.Short() {
		n = shortScenarios
	}
	if s := os.Getenv("PARITY_SCENARIOS"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v == 0 {
			t.Fatalf("PARITY_SCENARIOS=%q: want a positive integer", s)
		}
		n = v
	}
	return 1, n
}

// quietLogs drops both proxiers' logs (upstream logs through klog's global
// logger); PARITY_LOGS=1 keeps them.
func quietLogs() {
	if os.Getenv("PARITY_LOGS") != "" {
		return
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value) // known flags: cannot fail
	}
	klog.SetOutput(io.Discard)
}
