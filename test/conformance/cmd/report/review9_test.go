package main

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Adversarial review 9: each test below failed before the fix it names.

// Every state Ginkgo v2.32's JUnit reporter writes for a spec that did not pass
// (reporters/junit_report.go: failed, timedout, aborted as <failure>; interrupted, panicked
// as <error>; "INVALID SPEC STATE" with no body) counts as failed, with its reason.
func TestEveryGinkgoFailureStateIsFailed(t *testing.T) {
	errorCase := func(name, status, description string) string {
		return `<testcase name="` + name + `" status="` + status + `" time="1"><error message="" type="` + status + `">` +
			description + `</error></testcase>`
	}
	for _, tc := range []struct{ name, xml, want string }{
		{"interrupted", errorCase("[It] "+basic, "interrupted", "[INTERRUPTED] Interrupted by User&#xA;In [It] at: service.go:10 @ 12/06/26 15:00:00.000&#xA;&#xA;This is the Progress Report generated when the interrupt was received:&#xA;"), "Interrupted by User"},
		{"aborted", failed("[It] "+basic, "aborted", "[ABORTED] Aborted by the user&#xA;In [It] at: service.go:10 @ 12/06/26 15:00:00.000&#xA;"), "Aborted by the user"},
		{"panicked", errorCase("[It] "+basic, "panicked", "[PANICKED] Test Panicked&#xA;In [It] at: panic.go:262 @ 12/06/26 15:00:00.000&#xA;&#xA;boom&#xA;&#xA;Full Stack Trace&#xA;  x()&#xA;"), "Test Panicked: boom"},
		{"invalid", `<testcase name="[It] ` + basic + `" status="INVALID SPEC STATE" time="0"></testcase>`, "INVALID SPEC STATE"},
	} {
		r := mustReadRun(t, "x", writeRun(t, []string{basic}, map[string]string{"junit_01.xml": tc.xml}))
		if got := r.Outcome(basic); got != Failed || r.Results[basic].Reason != tc.want {
			t.Errorf("%s: %s %q, want FAIL %q", tc.name, got, r.Results[basic].Reason, tc.want)
		}
	}
}

// A run directory with the serial pass's JUnit file and without the parallel pass's (the
// Ginkgo CLI died, the file was deleted): the tests of that pass have no result, and the
// report must say that results are missing (README: "a pass whose JUnit file is missing ...:
// the report names the file"), so that -strict fails, whichever run it is.
func TestOnePassJUnitMissingIsAProblem(t *testing.T) {
	up := mustReadRun(t, "upstream", writeRun(t, []string{basic, restart},
		map[string]string{"junit_serial_01.xml": passed("[It] "+restart) + filteredOut("[It] "+basic)}))
	on := mustReadRun(t, "gate on", writeRun(t, []string{basic, restart},
		map[string]string{"junit_parallel_01.xml": passed("[It] " + basic), "junit_serial_01.xml": passed("[It] " + restart)}))
	runs := []*Run{up, on}
	if p := Problems(runs); len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "upstream") {
		t.Errorf("Problems = %q: want upstream's test without a result named (-strict must fail)", p)
	}
	md := report(t, runs...)
	if !strings.Contains(md, "Results missing") {
		t.Errorf("report does not say results are missing:\n%s", md)
	}
}

// The reference run's suite set-up failed (no node Ready, say): none of its tests ran, so
// none "passed upstream" and Regressions is empty; -strict must still fail: the comparison
// the issue asks for did not happen.
func TestStrictFailsWhenTheReferenceRanNothing(t *testing.T) {
	up := mustReadRun(t, "upstream", writeRun(t, []string{basic}, map[string]string{"junit_parallel_01.xml": failed("[SynchronizedBeforeSuite]", "failed",
		"[FAILED] there are currently no ready, schedulable nodes in the cluster&#xA;In [SynchronizedBeforeSuite] at: e2e.go:216 @ 12/06/26 15:00:00.000&#xA;")}))
	on := mustReadRun(t, "gate on", writeRun(t, []string{basic}, map[string]string{"junit_parallel_01.xml": passed("[It] " + basic)}))
	runs := []*Run{up, on}
	if len(Regressions(runs))+len(Problems(runs)) == 0 {
		t.Errorf("-strict would exit 0 with upstream's tests not run")
	}
}

// The failure and skip lists name the test as the tables do: a name with "<" or "|" is
// escaped (rendered Markdown would take "<int>" for an HTML tag and hide it).
func TestReasonListEscapesTheTestName(t *testing.T) {
	name := "[sig-network] Services should keep <weird> names | intact"
	r := mustReadRun(t, "x", writeRun(t, []string{name}, map[string]string{"junit_01.xml": failed("[It] [sig-network] Services should keep &lt;weird&gt; names | intact", "failed",
		"[FAILED] nope&#xA;In [It] at: service.go:10 @ 12/06/26 15:00:00.000&#xA;")}))
	md := report(t, r)
	if want := `- [sig-network] Services should keep \<weird> names \| intact: nope` + "\n"; !strings.Contains(md, want) {
		t.Errorf("report lacks %q:\n%s", want, md)
	}
}

// hack/conformance/run.sh lists the selection (selected.txt) from the dry run's JUnit file with
// grep and sed; ReadRun names the results with encoding/xml. A name with XML's special
// characters must come out the same both ways, or its result is "not selected" and its
// selection "not run". The dry run's file is written as Ginkgo writes it (encoding/xml).
func TestRunShSelectionMatchesReadRun(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script, err := os.ReadFile("../../../../hack/conformance/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The pipeline: from its grep to its sort.
	lines := strings.Split(string(script), "\n")
	var pipe []string
	for _, l := range lines {
		if strings.Contains(l, "grep -o '<testcase name=") || len(pipe) > 0 {
			pipe = append(pipe, l)
			if strings.Contains(l, "LC_ALL=C sort") {
				break
			}
		}
	}
	if len(pipe) == 0 {
		t.Fatal("run.sh: no selection pipeline (grep -o '<testcase name= ... sort)")
	}
	names := []string{
		"[sig-network] Services a literal &lt; in a name",
		`[sig-network] Services don't "quote" <int> & more`,
		"[sig-network] Services plain",
	}
	type tc struct {
		XMLName   xml.Name `xml:"testcase"`
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Status    string   `xml:"status,attr"`
	}
	var doc struct {
		XMLName xml.Name `xml:"testsuites"`
		Suite   struct {
			Cases []tc `xml:"testcase"`
		} `xml:"testsuite"`
	}
	for _, n := range names {
		doc.Suite.Cases = append(doc.Suite.Cases, tc{Name: "[It] " + n, Classname: "Kubernetes e2e suite", Status: "passed"})
	}
	doc.Suite.Cases = append(doc.Suite.Cases, tc{Name: "[It] [sig-network] Services filtered out", Classname: "Kubernetes e2e suite", Status: "skipped"})
	out, err := xml.MarshalIndent(doc, "  ", "    ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "selection"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "selection", "junit_dry-run_01.xml"), xml.Header+string(out))
	cmd := exec.Command(bash, "-c", "set -euo pipefail\n"+strings.Join(pipe, "\n"))
	cmd.Env = append(os.Environ(), "RUN_DIR="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run.sh's pipeline: %v\n%s", err, b)
	}
	var results string
	for _, c := range doc.Suite.Cases[:len(names)] {
		b, err := xml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		results += string(b)
	}
	r := mustReadRun(t, "x", writeRun(t, nil, map[string]string{"junit_01.xml": results}))
	sel, err := readLines(filepath.Join(dir, "selected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sel) != len(names) {
		t.Fatalf("selected.txt = %q, want the %d passed", sel, len(names))
	}
	for _, n := range sel {
		if _, ok := r.Results[n]; !ok {
			t.Errorf("selected.txt has %q, which no result of ReadRun is named (results: %q)", n, sortedNames(r.Results))
		}
	}
}

// -strict's regressions: a test upstream passed that another run failed, skipped, did not run
// or did not select is one, in each run (held before the review; kept as a check).
func TestRegressionsOfEveryKind(t *testing.T) {
	tests := []string{basic, affinity, fallback, restart}
	up := mustReadRun(t, "upstream", writeRun(t, tests, map[string]string{"junit_01.xml": passed("[It] "+basic) + passed("[It] "+affinity) + passed("[It] "+fallback) + passed("[It] "+restart)}))
	off := mustReadRun(t, "gate-off", writeRun(t, tests[:3], map[string]string{"junit_01.xml": passed("[It] "+basic) +
		`<testcase name="[It] ` + affinity + `" status="skipped" time="0"><skipped message="skipped - Requires at least 2 nodes (not -1)"></skipped></testcase>`}))
	on := mustReadRun(t, "gate-on", writeRun(t, tests, map[string]string{"junit_01.xml": passed("[It] "+basic) + passed("[It] "+affinity) + passed("[It] "+fallback) +
		failed("[It] "+restart, "timedout", "[TIMEDOUT] A suite timeout occurred&#xA;In [It] at: service.go:1 @ 12/06/26 15:00:00.000&#xA;")}))
	got := strings.Join(Regressions([]*Run{up, off, on}), "\n")
	for _, want := range []string{affinity + ": skip in gate-off", fallback + ": — in gate-off", restart + ": not selected in gate-off", restart + ": FAIL in gate-on"} {
		if !strings.Contains(got, want) {
			t.Errorf("Regressions lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, basic) {
		t.Errorf("Regressions list a test that passed everywhere:\n%s", got)
	}
}
