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

// run is one scenario on upstream's side and on ours, gate off and on.
type run struct {
	t        *testing.T
	sc       *scenario
	rules    []deliberate
	wantDiff map[at][]string
	up       *upstreamSide
	ours     map[bool]*oursSide
	env      environment // the scenario's, with a restart's scheduler
	retired  map[bool]map[string]bool
	res      runResult
}

// runScenario runs a scenario on upstream's side and on ours twice, with
// the IPVSImmediateTermination gate off and on, and compares ours with
// upstream's after every step; it stops at the first unexpected
// difference. rules accept deliberate differences; wantDiff gives the
// exact differences left that a hand-written case expects (none elsewhere).
func runScenario(t *testing.T, sc *scenario, rules []deliberate, wantDiff map[at][]string) runResult {
	t.Helper()
	r := &run{t: t, sc: sc, rules: rules, wantDiff: wantDiff, env: sc.env,
		retired: map[bool]map[string]bool{false: {}, true: {}}, res: runResult{accepted: map[string]int{}}}
	r.up, r.ours = newSides(t, sc)
	prev := newCluster()
	for i, st := range sc.steps {
		r.apply(i, st, prev)
		prev = st.cluster
		r.res.syncs++
		if !r.compare(i, st) {
			break
		}
	}
	return r.res
}

// apply hands a step to every side: all of the state on the first step
// and on restarts, else the events since the previous step, then a sync.
func (r *run) apply(i int, st step, prev *cluster) {
	all := []side{r.up, r.ours[false], r.ours[true]}
	if st.restart != nil {
		r.env = restartAll(r.t, r.sc.env, st.restart, r.up, r.ours)
	}
	for _, s := range all {
		if i == 0 || st.restart != nil {
			start(s, st.cluster)
			continue
		}
		feed(s, prev, st.cluster)
		syncNow(s)
	}
}

// compare checks both of our sides against upstream's after step i.
func (r *run) compare(i int, st step) bool {
	r.t.Helper()
	ok := true
	for _, gate := range []bool{false, true} {
		immediate := map[string]bool{}
		st.cluster.addImmediateVS(immediate, gate)
		x := diffContext{env: &r.env, cluster: st.cluster, gate: gate, immediate: immediate, retired: r.retired[gate]}
		d := compareSides(r.t, r.up, r.ours[gate], x, r.rules)
		for name, lines := range d.accepted {
			r.res.accepted[name] += len(lines)
		}
		if want := r.wantDiff[at{gate, i}]; !sameLines(d.lines(), want) {
			r.t.Errorf("%s", report(r.sc, gate, i, d, want))
			ok = false
		}
	}
	return ok
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
