package parity

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// runResult counts what one run compared.
type runResult struct {
	syncs int // of upstream's side; each compared with ours, gate off and on
	// accepted counts the diff lines deliberate rules accepted, by rule.
	accepted map[string]int
}

// at is a step of a run with the gate off or on.
type at struct {
	gate bool
	step int
}

// runScenario runs a scenario on upstream's side and on ours twice, with
// the IPVSImmediateTermination gate off and on, and compares ours with
// upstream's after every step; it stops at the first unexpected
// difference. rules accept deliberate differences; wantDiff gives the
// exact differences left that a hand-written case expects (none elsewhere).
func runScenario(t *testing.T, sc *scenario, rules []deliberate, wantDiff map[at][]string) runResult {
	t.Helper()
	res := runResult{accepted: map[string]int{}}
	up, ours := newSides(t, sc)
	env := sc.env
	leftovers := weightZeroLines(t, up) // seeded by the scenario
	immediate := map[bool]map[string]bool{false: {}, true: {}}
	prev := newCluster()
	for i, st := range sc.steps {
		all := []side{up, ours[false], ours[true]}
		switch {
		case st.restart != nil:
			leftovers = weightZeroLines(t, up)
			env = restartAll(t, sc.env, st.restart, up, ours)
			for _, s := range all {
				start(s, st.cluster)
			}
		case i == 0:
			for _, s := range all {
				start(s, st.cluster)
			}
		default:
			for _, s := range all {
				feed(s, prev, st.cluster)
				syncNow(s)
			}
		}
		prev = st.cluster
		res.syncs++
		failed := false
		for _, gate := range []bool{false, true} {
			st.cluster.addImmediateVS(immediate[gate], gate)
			x := diffContext{env: &env, cluster: st.cluster, gate: gate, leftovers: leftovers, immediate: immediate[gate]}
			d := compareSides(t, up, ours[gate], x, rules)
			for name, lines := range d.accepted {
				res.accepted[name] += len(lines)
			}
			if want := wantDiff[at{gate, i}]; !sameLines(d.lines(), want) {
				t.Errorf("%s", report(sc, gate, i, d, want))
				failed = true
			}
		}
		if failed {
			return res
		}
	}
	return res
}

// newSides prepares the namespace and makes upstream's side and ours, with
// the gate off and on.
func newSides(t *testing.T, sc *scenario) (*upstreamSide, map[bool]*oursSide) {
	t.Helper()
	if err := resetLinks(sc.env.links, sc.env.foreignBound); err != nil {
		t.Fatalf("prepare the namespace: %v", err)
	}
	ctx := context.Background()
	conns := connModel{salt: sc.name, fixed: sc.conns}
	up, err := newUpstream(ctx, &sc.env, conns)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[bool]*oursSide{}
	for _, gate := range []bool{false, true} {
		if ours[gate], err = newOurs(ctx, &sc.env, gate, conns); err != nil {
			t.Fatal(err)
		}
	}
	return up, ours
}

// restartAll replaces every proxier by a new one on the same kernel state.
func restartAll(t *testing.T, env environment, r *restart, up *upstreamSide, ours map[bool]*oursSide) environment {
	t.Helper()
	if r.scheduler != "" {
		env.scheduler = r.scheduler
	}
	ctx := context.Background()
	if err := up.startProxiers(ctx, &env); err != nil {
		t.Fatal(err)
	}
	for gate, o := range ours {
		if err := o.startProxiers(ctx, &env, gate); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// weightZeroLines are upstream's weight-0 real servers.
func weightZeroLines(t *testing.T, up *upstreamSide) map[string]bool {
	t.Helper()
	lines, err := up.state()
	if err != nil {
		t.Fatalf("read upstream's state: %v", err)
	}
	out := map[string]bool{}
	for _, l := range lines {
		if strings.HasPrefix(l, "vs ") && strings.HasSuffix(l, " weight=0") {
			out[l] = true
		}
	}
	return out
}

func compareSides(t *testing.T, up, ours side, x diffContext, rules []deliberate) stateDiff {
	t.Helper()
	upLines, err := up.state()
	if err != nil {
		t.Fatalf("read upstream's state: %v", err)
	}
	ourLines, err := ours.state()
	if err != nil {
		t.Fatalf("read our state: %v", err)
	}
	return diffStates(upLines, ourLines, x, rules)
}

func sameLines(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// report says which scenario, seed, gate and step differ, how to rerun it,
// the steps so far, the API state, and the difference.
func report(sc *scenario, gate bool, at int, d stateDiff, want []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s, gate %s: states differ after step %d of %d\n", sc.name, onOff(gate), at, len(sc.steps)-1)
	if sc.seed != 0 {
		fmt.Fprintf(&b, "  rerun: PARITY_SEED=%d go test ./test/parity -run TestParityGenerated -v\n", sc.seed)
	}
	fmt.Fprintf(&b, "  node: %s\n  steps:\n", &sc.env)
	for i, st := range sc.steps[:at+1] {
		fmt.Fprintf(&b, "    %d: %s\n", i, st.what)
	}
	fmt.Fprintf(&b, "  API state after step %d:\n%s", at, sc.steps[at].cluster.describe())
	b.WriteString("  difference:\n" + d.String())
	if len(want) > 0 {
		b.WriteString("  expected difference (docs/parity.md):\n    " + strings.Join(want, "\n    ") + "\n")
	}
	return b.String()
}

func onOff(gate bool) string {
	if gate {
		return "on"
	}
	return "off"
}
