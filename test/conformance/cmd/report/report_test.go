package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
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
	writeFile(t, file, `<testsuites><testsuite time="0.2">
<testcase name="[SynchronizedBeforeSuite]" status="failed"><failure message="" type="failed">[FAILED] there are currently no ready, schedulable nodes in the cluster&#xA;In [SynchronizedBeforeSuite] at: e2e.go:216&#xA;</failure></testcase>
<testcase name="[SynchronizedBeforeSuite]" status="failed"><failure message="" type="failed">[FAILED] `+"\uFFFD[1m\uFFFD[38;5;9m"+`SynchronizedBeforeSuite failed on Ginkgo parallel process #1`+"\uFFFD[0m"+`&#xA;</failure></testcase>
</testsuite></testsuites>`)
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

// writeRun writes a run directory: its selected.txt and JUnit files (name -> testcases).
func writeRun(t *testing.T, selected []string, junits map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if selected != nil {
		writeFile(t, filepath.Join(dir, "selected.txt"), strings.Join(selected, "\n")+"\n")
	}
	for name, cases := range junits {
		writeFile(t, filepath.Join(dir, name), junitXML(cases))
	}
	return dir
}

func writeFile(t *testing.T, file, text string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func junitXML(cases string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="Kubernetes e2e suite" time="10">` + cases + `</testsuite></testsuites>`
}

func passed(name string) string {
	return `<testcase name="` + name + `" status="passed" time="1"></testcase>`
}

func filteredOut(name string) string {
	return `<testcase name="` + name + `" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>`
}

func failed(name, status, description string) string {
	return `<testcase name="` + name + `" status="` + status + `" time="1"><failure message="" type="` + status + `">` +
		description + `</failure></testcase>`
}

func report(t *testing.T, runs ...*Run) string {
	t.Helper()
	var buf bytes.Buffer
	Report(&buf, runs, time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC), "")
	return buf.String()
}

func mustReadRun(t *testing.T, name, path string) *Run {
	t.Helper()
	r, err := ReadRun(name, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The counts are of the selected tests: Ginkgo's suite nodes ([ReportBeforeSuite],
// [SynchronizedBeforeSuite], [ReportAfterSuite] ...) are in every JUnit file, once per pass,
// and are not tests. The serial pass lists the parallel pass's specs as filtered out; each
// spec counts once, from the pass that ran it.
func TestCountsAreOfTheSelectedTests(t *testing.T) {
	dir := writeRun(t, []string{basic, restart}, map[string]string{
		"junit_parallel_01.xml": passed("[ReportBeforeSuite]") + passed("[SynchronizedBeforeSuite]") +
			passed("[It] "+basic) + filteredOut("[It] "+restart) + filteredOut("[It] "+filtered) +
			passed("[SynchronizedAfterSuite]") + passed("[ReportAfterSuite] Kubernetes e2e suite report"),
		"junit_serial_01.xml": passed("[ReportBeforeSuite]") + passed("[SynchronizedBeforeSuite]") +
			filteredOut("[It] "+basic) + passed("[It] "+restart) + filteredOut("[It] "+filtered) +
			passed("[SynchronizedAfterSuite]") + passed("[ReportAfterSuite] Kubernetes e2e suite report"),
	})
	md := report(t, mustReadRun(t, "upstream", dir))
	if !strings.Contains(md, "| upstream | — | 2 | 2 | 0 | 0 | 0 | 20s |") {
		t.Errorf("counts: want 2 selected, 2 passed (suite nodes are not tests):\n%s", md)
	}
	if strings.Contains(md, "| [SynchronizedBeforeSuite] |") || strings.Contains(md, "## Every test (2)") == false {
		t.Errorf("the tables list suite nodes as tests:\n%s", md)
	}
}

// A run that selected fewer tests (CONFORMANCE_ONLY, or an older run's directory) did not
// "not run" the others: its counts add up to its own selection.
func TestNotSelectedIsNotNotRun(t *testing.T) {
	up := mustReadRun(t, "upstream", writeRun(t, []string{basic, restart},
		map[string]string{"junit_01.xml": passed("[It] "+basic) + passed("[It] "+restart)}))
	on := mustReadRun(t, "gate on", writeRun(t, []string{basic},
		map[string]string{"junit_01.xml": passed("[It] "+basic) + filteredOut("[It] "+restart)}))
	md := report(t, up, on)
	for _, want := range []string{
		"| upstream | — | 2 | 2 | 0 | 0 | 0 |",
		"| gate on | — | 1 | 1 | 0 | 0 | 0 |",
		"| " + restart + " | pass | not selected |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// With the Ginkgo CLI every parallel process reports the suite node; the e2e framework sorts
// equal names by start time, and process 2 may start first: its entry only says which process
// failed. The reason kept is process 1's, whichever comes first.
func TestSuiteFailureReasonWhicheverProcessComesFirst(t *testing.T) {
	forwarded := failed("[SynchronizedBeforeSuite]", "failed", "[FAILED] \uFFFD[1mSynchronizedBeforeSuite failed on Ginkgo parallel process #1\uFFFD[0m&#xA;  The first SynchronizedBeforeSuite function running on Ginkgo parallel process #1 failed.  This suite will now abort.&#xA;&#xA;In [SynchronizedBeforeSuite] at: e2e.go:77 @ 12/06/26 15:00:00.000&#xA;")
	first := failed("[SynchronizedBeforeSuite]", "failed", "[FAILED] there are currently no ready, schedulable nodes in the cluster&#xA;In [SynchronizedBeforeSuite] at: e2e.go:216 @ 12/06/26 15:00:00.000&#xA;")
	r := mustReadRun(t, "x", writeRun(t, []string{basic}, map[string]string{"junit_parallel_01.xml": forwarded + first}))
	md := report(t, r)
	if !strings.Contains(md, "- [SynchronizedBeforeSuite]: there are currently no ready, schedulable nodes in the cluster\n") {
		t.Errorf("suite failure reason: want process 1's:\n%s", md)
	}
}

// A failure's reason is Ginkgo's whole message (gomega's are several lines: "Timed out after
// 120s.\nExpected ..."), a panic's value, and the node that failed when it is not the It.
func TestFailureReasonIsTheWholeMessage(t *testing.T) {
	for _, tc := range []struct{ status, description, want string }{
		{"failed", "[FAILED] Timed out after 120.001s.&#xA;Expected&#xA;    &lt;int&gt;: 1&#xA;to equal&#xA;    &lt;int&gt;: 2&#xA;In [It] at: service.go:10 @ 12/06/26 15:00:00.000&#xA;",
			`Timed out after 120.001s. Expected \<int>: 1 to equal \<int>: 2`},
		{"panicked", "[PANICKED] Test Panicked&#xA;In [It] at: panic.go:262 @ 12/06/26 15:00:00.000&#xA;&#xA;runtime error: index out of range [3] with length 2&#xA;&#xA;Full Stack Trace&#xA;  k8s.io/kubernetes/test/e2e/network.glob..func1()&#xA;",
			"Test Panicked: runtime error: index out of range [3] with length 2"},
		{"failed", "[FAILED] failed to create namespace: context deadline exceeded&#xA;In [BeforeEach] at: framework.go:249 @ 12/06/26 15:00:00.000&#xA;",
			"failed to create namespace: context deadline exceeded (in [BeforeEach])"},
		{"timedout", "[TIMEDOUT] A suite timeout occurred&#xA;In [It] at: service.go:4290 @ 12/06/26 15:00:00.000&#xA;&#xA;This is the Progress Report generated when the suite timeout occurred:&#xA;  goroutine 1&#xA;",
			"A suite timeout occurred"},
	} {
		r := mustReadRun(t, "x", writeRun(t, nil, map[string]string{"junit_01.xml": failed("[It] "+basic, tc.status, tc.description)}))
		if got := r.Results[basic]; got.Outcome != Failed || got.Reason != tc.want {
			t.Errorf("%s: %+v, want reason %q", tc.status, got, tc.want)
		}
	}
}

// A run whose e2e.test died before writing its reports (killed, or the run stopped at its
// dry run) is in the report with its tests not run, beside the other runs, and -strict fails.
func TestRunWithoutJUnitIsNotRun(t *testing.T) {
	up := mustReadRun(t, "upstream", writeRun(t, []string{basic}, map[string]string{"junit_01.xml": passed("[It] " + basic)}))
	on, err := ReadRun("gate on", writeRun(t, []string{basic}, nil))
	if err != nil {
		t.Fatalf("a run directory without JUnit files: %v, want a run whose tests did not run", err)
	}
	md := report(t, up, on)
	for _, want := range []string{"| gate on | — | 1 | 0 | 0 | 0 | 1 |", "| " + basic + " | pass | — |", "no junit*.xml"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if len(Problems([]*Run{up, on})) != 1 {
		t.Errorf("Problems = %q, want the missing JUnit", Problems([]*Run{up, on}))
	}
}

// A JUnit file cut short (e2e.test killed while writing it) is named in the report as
// unreadable, its tests not run; the other files and runs are still reported.
func TestTruncatedJUnit(t *testing.T) {
	dir := writeRun(t, []string{basic, restart}, map[string]string{"junit_serial_01.xml": passed("[It] " + restart)})
	writeFile(t, filepath.Join(dir, "junit_parallel_01.xml"), junitXML(passed("[It] " + basic))[:60])
	r, err := ReadRun("gate on", dir)
	if err != nil {
		t.Fatalf("a truncated JUnit file: %v, want it reported in the run", err)
	}
	md := report(t, r)
	for _, want := range []string{"| gate on | — | 2 | 1 | 0 | 0 | 1 |", "junit_parallel_01.xml: XML syntax error"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// conformance.sh reports the directories of runs it did not repeat (CONFORMANCE_RUNS) as they
// are, and its note names today's commit: each run says when it started (its first pass's
// timestamp), so an older run is seen as one.
func TestCountsSayWhenEachRunStarted(t *testing.T) {
	dir := writeRun(t, []string{basic}, nil)
	writeFile(t, filepath.Join(dir, "junit_parallel_01.xml"), `<testsuites><testsuite time="10" timestamp="2026-12-05T09:00:00">`+passed("[It] "+basic)+`</testsuite></testsuites>`)
	writeFile(t, filepath.Join(dir, "junit_serial_01.xml"), `<testsuites><testsuite time="10" timestamp="2026-12-05T09:30:00"></testsuite></testsuites>`)
	md := report(t, mustReadRun(t, "upstream", dir))
	if !strings.Contains(md, "| run | started | selected |") || !strings.Contains(md, "| upstream | 2026-12-05T09:00:00 | 1 | 1 |") {
		t.Errorf("counts: want the run's start (its first pass's timestamp):\n%s", md)
	}
}

// gomega's messages name types in angle brackets ("Expected <int>: 1"): rendered Markdown
// would take "<int>" for an HTML tag and show nothing; the report escapes it.
func TestReasonKeepsAngleBracketsInMarkdown(t *testing.T) {
	r := mustReadRun(t, "x", writeRun(t, nil, map[string]string{"junit_01.xml": failed("[It] "+basic, "failed",
		"[FAILED] Expected&#xA;    &lt;int&gt;: 1&#xA;to equal&#xA;    &lt;int&gt;: 2&#xA;In [It] at: service.go:10 @ 12/06/26 15:00:00.000&#xA;")}))
	if md := report(t, r); !strings.Contains(md, `: Expected \<int>: 1 to equal \<int>: 2`+"\n") {
		t.Errorf("report lacks the reason with its brackets escaped:\n%s", md)
	}
}

// A pass that stopped early (its suite timeout, an interrupt) leaves its remaining tests out
// of its JUnit file ("not run"); Ginkgo says why in the suite's SpecialSuiteFailureReason,
// and so does the report.
func TestSuiteStoppedEarlySaysWhy(t *testing.T) {
	dir := writeRun(t, []string{basic, restart}, nil)
	writeFile(t, filepath.Join(dir, "junit_parallel_01.xml"), `<testsuites><testsuite time="10800">
<properties><property name="SuiteSucceeded" value="false"></property><property name="SpecialSuiteFailureReason" value="Suite Timeout Elapsed"></property></properties>`+
		passed("[It] "+basic)+filteredOut("[It] "+restart)+`</testsuite></testsuites>`)
	md := report(t, mustReadRun(t, "gate on", dir))
	for _, want := range []string{"| gate on | — | 2 | 1 | 0 | 0 | 1 |", "- [junit_parallel_01.xml]: Suite Timeout Elapsed\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// keep.sh's copy of a run (gzipped JUnit, selected.txt, about.txt) reads as the run itself.
func TestReadRunKeptResults(t *testing.T) {
	dir := t.TempDir()
	junit, err := os.ReadFile("testdata/gate-on/junit_01.xml")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(junit)
	zw.Close()
	selected, err := os.ReadFile("testdata/gate-on/selected.txt")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"junit_01.xml.gz": gz.Bytes(),
		"selected.txt":    selected,
		"about.txt":       []byte("commit abc1234, 2026-12-07\nfresh clone, 2 cores\n"),
		"junit_02.xml.gz": []byte("not gzip"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kept, err := ReadRun("gate on", dir)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ReadRun("gate on", "testdata/gate-on")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(kept.Results, plain.Results) || !reflect.DeepEqual(kept.Selected, plain.Selected) {
		t.Errorf("kept results differ from the run's own:\n%v\n%v", kept.Results, plain.Results)
	}
	if len(kept.Problems) != 1 || !strings.Contains(kept.Problems[0], "junit_02.xml.gz") {
		t.Errorf("problems = %q, want the one file that is not gzip", kept.Problems)
	}
	var buf bytes.Buffer
	Report(&buf, []*Run{plain, kept}, time.Now(), "")
	for _, want := range []string{"- gate on: this machine's run (no about.txt)\n", "- gate on: commit abc1234, 2026-12-07 fresh clone, 2 cores\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
