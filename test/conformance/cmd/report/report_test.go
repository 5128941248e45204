package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	basic    = "[sig-network] Services should serve a basic endpoint from pods [Conformance]"
	affinity = "[sig-network] Services should have session affinity work for NodePort service [LinuxOnly] [Conformance]"
	threeN   = "[sig-network] Services should implement NodePort and HealthCheckNodePort correctly when ExternalTrafficPolicy changes"
	fallback = "[sig-network] Services should fallback to terminating endpoints when there are no ready endpoints with internalTrafficPolicy=Cluster"
	filtered = "[sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]"
	restart  = "[sig-network] Services should work after restarting kube-proxy [Disruptive]"
)

func readRuns(t *testing.T) []*Run {
	t.Helper()
	var runs []*Run
	for _, a := range [][2]string{{"upstream", "testdata/upstream.xml"}, {"gate off", "testdata/gate-off.xml"}, {"gate on", "testdata/gate-on"}} {
		r, err := ReadRun(a[0], a[1])
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

func TestReadRun(t *testing.T) {
	runs := readRuns(t)
	up, on := runs[0], runs[2]
	for name, want := range map[string]Outcome{
		basic: Passed, affinity: Failed, threeN: Skipped, fallback: Passed, filtered: Absent,
	} {
		if got := up.Results[name].Outcome; got != want {
			t.Errorf("upstream %q = %s, want %s", name, got, want)
		}
	}
	if got := up.Suite["[SynchronizedBeforeSuite]"].Outcome; got != Passed {
		t.Errorf("upstream's suite node = %s, want pass, apart from the tests", got)
	}
	if got := up.Results[affinity].Reason; got != "Affinity should hold but didn't." {
		t.Errorf("failure reason = %q: want the [FAILED] line without its prefix", got)
	}
	if got := up.Results[threeN].Reason; got != "Need at least 3 schedulable nodes for this test" {
		t.Errorf("skip reason = %q", got)
	}
	if got := on.Results[affinity]; got.Outcome != Failed || got.Reason != "A suite timeout occurred" {
		t.Errorf("timed-out test = %+v, want a failure with its reason", got)
	}
	if got := on.Results[fallback].Reason; !strings.Contains(got, `retried 60 times`) || strings.Contains(got, "In [It]") {
		t.Errorf("failure reason = %q: want the first line, pipes escaped", got)
	}
	if len(on.Files) != 1 || !strings.HasSuffix(on.Files[0], "gate-on/junit_01.xml") {
		t.Errorf("a directory run reads its own junit files, not its subdirectories' (the dry run's): %v", on.Files)
	}
	if len(on.Selected) != 5 || on.Results[restart].Outcome != Absent {
		t.Errorf("selected.txt: %d tests, %q = %s; want 5, the restart test selected and not run",
			len(on.Selected), restart, on.Results[restart].Outcome)
	}
	if up.Seconds != 300.5 {
		t.Errorf("run time = %v, want the suite's 300.5", up.Seconds)
	}
}

func TestReport(t *testing.T) {
	var buf bytes.Buffer
	Report(&buf, readRuns(t), time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), "commit abc")
	md := buf.String()
	for _, want := range []string{
		"Generated 2026-12-06T08:00:00Z; commit abc.",
		"| upstream | 2026-12-06T07:00:00 | 5 | 2 | 1 | 1 | 1 | 5m0s |",
		"| gate off | 2026-12-06T07:00:00 | 5 | 3 | 0 | 1 | 1 | 5m0s |",
		"| gate on | 2026-12-06T07:00:00 | 5 | 1 | 2 | 1 | 1 | 5m0s |",
		"| " + restart + " | — | — | — |",
		"## Tests whose outcome differs from upstream's (2)",
		"| " + affinity + " | FAIL | pass | FAIL |",
		"| " + fallback + " | pass | pass | FAIL |",
		"| " + basic + " | pass | pass | pass |",
		"### gate on (2)",
		"- " + fallback + ": service is not reachable within 2m0s timeout on endpoint svc-fallback:80 over TCP protocol \\| retried 60 times",
		"- " + threeN + ": Need at least 3 schedulable nodes for this test",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, filtered) {
		t.Errorf("a test the focus left out (message \"skipped\") is in the report")
	}
	differ := md[strings.Index(md, "## Tests whose"):strings.Index(md, "## Every test")]
	if strings.Contains(differ, basic) || strings.Contains(differ, threeN) {
		t.Errorf("differences list tests with the same outcome everywhere:\n%s", differ)
	}
}

func TestRegressions(t *testing.T) {
	got := Regressions(readRuns(t))
	want := []string{fallback + ": FAIL in gate on"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Regressions = %q, want %q (upstream's own failure is not one)", got, want)
	}
}

// A suite set-up that fails on every parallel process: Ginkgo reports it once per process,
// the later ones in colour and saying only which process failed; the first reason stays.
func TestSuiteFailureReason(t *testing.T) {
	file := filepath.Join(t.TempDir(), "junit_parallel_01.xml")
	xml := `<testsuites><testsuite time="0.2">
<testcase name="[SynchronizedBeforeSuite]" status="failed"><failure message="" type="failed">[FAILED] there are currently no ready, schedulable nodes in the cluster&#xA;In [SynchronizedBeforeSuite] at: e2e.go:216&#xA;</failure></testcase>
<testcase name="[SynchronizedBeforeSuite]" status="failed"><failure message="" type="failed">[FAILED] ` + "\uFFFD[1m\uFFFD[38;5;9m" + `SynchronizedBeforeSuite failed on Ginkgo parallel process #1` + "\uFFFD[0m" + `&#xA;</failure></testcase>
</testsuite></testsuites>`
	if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadRun("x", file)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Suite["[SynchronizedBeforeSuite]"].Reason; got != "there are currently no ready, schedulable nodes in the cluster" {
		t.Errorf("reason = %q", got)
	}
	if got := oneLine("\x1b[1m\x1b[38;5;9mred\x1b[0m text"); got != "red text" {
		t.Errorf("oneLine kept colour codes: %q", got)
	}
}

func TestReadRunErrors(t *testing.T) {
	if r, err := ReadRun("x", t.TempDir()); err != nil || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "no junit") {
		t.Errorf("empty directory: err = %v, want a run with the problem \"no junit\"", err)
	}
	if _, err := ReadRun("x", "testdata/missing.xml"); err == nil {
		t.Error("missing file: no error")
	}
}
