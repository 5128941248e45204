package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Outcome is what one run made of one test.
type Outcome int

const (
	// Absent: the run selected the test (or its selection is unknown) and has no result for
	// it: a suite set-up failed, the run stopped, or its JUnit file is missing.
	Absent Outcome = iota
	Passed
	Failed
	// Skipped at run time (the test called Skip: a missing provider, too few nodes...).
	Skipped
	// NotSelected: the run's selection (selected.txt) does not have the test.
	NotSelected
)

func (o Outcome) String() string {
	return [...]string{"—", "pass", "FAIL", "skip", "not selected"}[o]
}

// Result is one test's outcome in one run, with the failure or skip reason.
type Result struct {
	Outcome Outcome
	Reason  string
	Seconds float64
}

// Run is one run's results by test name.
type Run struct {
	Name    string
	Files   []string
	Results map[string]Result
	// Suite are the results of Ginkgo's suite nodes ([SynchronizedBeforeSuite],
	// [ReportAfterSuite] ...): in every JUnit file, not tests.
	Suite   map[string]Result
	Seconds float64 // the suites' own time
	// Started is the earliest suite's timestamp (Ginkgo's, local time): when the run began.
	Started string
	// About says where the results come from (hack/conformance/keep.sh writes it to
	// about.txt beside results it keeps in the repository: commit, date, machine).
	About string
	// Problems are what kept results from the report: JUnit files missing or unreadable.
	Problems []string
	// Selected are the tests the run meant to run (hack/conformance/run.sh's dry run writes
	// them to selected.txt): one it has no result for did not run (a suite set-up failed,
	// or the run stopped).
	Selected []string
	selected map[string]bool
}

// junit is the part of Ginkgo v2's JUnit report (k8s.io/kubernetes' e2e framework
// writes it as junit_01.xml under --report-dir) that the report reads.
type junit struct {
	Suites []struct {
		Time       float64 `xml:"time,attr"`
		Timestamp  string  `xml:"timestamp,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []testcase `xml:"testcase"`
	} `xml:"testsuite"`
}

type testcase struct {
	Name    string  `xml:"name,attr"`
	Status  string  `xml:"status,attr"`
	Time    float64 `xml:"time,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	Failure *failure `xml:"failure"`
	Error   *failure `xml:"error"`
}

type failure struct {
	Message     string `xml:"message,attr"`
	Type        string `xml:"type,attr"`
	Description string `xml:",chardata"`
}

// ReadRun reads a run from a JUnit file, or from a directory: its junit*.xml and
// junit*.xml.gz files (not those of subdirectories: run.sh keeps its dry run's in selection/),
// selected.txt and about.txt. A JUnit file missing or unreadable is one of the run's
// Problems, not an error: its tests did not run.
func ReadRun(name, path string) (*Run, error) {
	run := &Run{Name: name, Results: map[string]Result{}, Suite: map[string]Result{}}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	files := []string{path}
	if info.IsDir() {
		if files, err = junitFiles(path); err != nil {
			return nil, fmt.Errorf("run %s: %w", name, err)
		}
		if err := run.readSelection(filepath.Join(path, "selected.txt")); err != nil {
			return nil, fmt.Errorf("run %s: %w", name, err)
		}
		about, err := readLines(filepath.Join(path, "about.txt"))
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("run %s: %w", name, err)
		}
		run.About = strings.Join(about, " ")
		if len(files) == 0 {
			run.Problems = append(run.Problems, fmt.Sprintf("no junit*.xml in %s (e2e.test stopped before its report)", path))
		}
	}
	for _, f := range files {
		if err := run.add(f); err != nil {
			run.Problems = append(run.Problems, fmt.Sprintf("%v (its tests count as not run)", err))
		}
	}
	run.Files = files
	return run, nil
}

// junitFiles are a run directory's JUnit files, plain or gzipped (keep.sh keeps them so), sorted;
// a .gz whose plain twin is there is left out.
func junitFiles(dir string) ([]string, error) {
	var files []string
	for _, pattern := range []string{"junit*.xml", "junit*.xml.gz"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	// A gzipped file beside its plain twin (keep.sh's copy next to the run's own) is the
	// same pass: read once, the plain one.
	plain := map[string]bool{}
	for _, f := range files {
		plain[f] = true
	}
	kept := files[:0]
	for _, f := range files {
		if !(strings.HasSuffix(f, ".gz") && plain[strings.TrimSuffix(f, ".gz")]) {
			kept = append(kept, f)
		}
	}
	files = kept
	sort.Strings(files)
	return files, nil
}

// readJUnit is a JUnit file's bytes, gunzipped when its name ends in .gz.
func readJUnit(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil || !strings.HasSuffix(file, ".gz") {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if data, err = io.ReadAll(zr); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, nil
}

// readSelection reads selected.txt, when the run has one.
func (r *Run) readSelection(file string) error {
	lines, err := readLines(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	r.Selected, r.selected = lines, map[string]bool{}
	for _, n := range lines {
		r.selected[n] = true
	}
	return nil
}

// Outcome is the run's outcome of test name: its result, else not run when the run selected
// it (or has no selection), else not selected.
func (r *Run) Outcome(name string) Outcome {
	if res, ok := r.Results[name]; ok || r.selected == nil || r.selected[name] {
		return res.Outcome
	}
	return NotSelected
}

func (r *Run) add(file string) error {
	data, err := readJUnit(file)
	if err != nil {
		return err
	}
	var doc junit
	// A report of one suite may be written without the <testsuites> wrapper.
	if err := xml.Unmarshal(data, &doc); err != nil || len(doc.Suites) == 0 {
		var one struct {
			XMLName xml.Name `xml:"testsuite"`
		}
		if xml.Unmarshal(data, &one) == nil {
			data = []byte("<testsuites>" + strings.TrimPrefix(string(data), xml.Header) + "</testsuites>")
			err = xml.Unmarshal(data, &doc)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	for _, s := range doc.Suites {
		r.Seconds += s.Time
		if s.Timestamp != "" && (r.Started == "" || s.Timestamp < r.Started) {
			r.Started = s.Timestamp
		}
		for _, p := range s.Properties {
			// Why Ginkgo stopped the suite early (its timeout, an interrupt): the tests it
			// had not run are left out of the file.
			if p.Name == "SpecialSuiteFailureReason" && p.Value != "" {
				r.Suite["["+filepath.Base(file)+"]"] = Result{Outcome: Failed, Reason: oneLine(p.Value)}
			}
		}
		for _, c := range s.Cases {
			if res, ran := caseResult(c); ran {
				r.record(c.Name, res)
			}
		}
	}
	return nil
}

// caseResult is one JUnit testcase's result; ran is false for a spec the filters left out
// (Ginkgo's bare "skipped": also what a selected spec gets when the suite stops first).
func caseResult(c testcase) (res Result, ran bool) {
	res = Result{Seconds: c.Time}
	switch {
	case c.Failure != nil:
		res.Outcome, res.Reason = Failed, reason(c.Failure)
	case c.Error != nil:
		res.Outcome, res.Reason = Failed, reason(c.Error)
	case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
		msg := ""
		if c.Skipped != nil {
			msg = c.Skipped.Message
		}
		// Ginkgo writes "skipped" alone for a spec that --ginkgo.focus/skip left
		// out, "skipped - REASON" for one that called Skip: only the latter ran.
		if msg == "skipped" || msg == "pending" || msg == "" {
			return res, false
		}
		res.Outcome, res.Reason = Skipped, oneLine(strings.TrimPrefix(msg, "skipped - "))
	case c.Status == "passed" || c.Status == "":
		res.Outcome = Passed
	default: // failed, timedout, panicked, interrupted, aborted without a body
		res.Outcome, res.Reason = Failed, c.Status
	}
	return res, true
}

// record keeps a spec's result in Results, a suite node's in Suite. A name reported twice
// (several files, or a suite node of every parallel process) keeps its first failure, unless
// that one only says process 1 failed ("... failed on Ginkgo parallel process #1") and a
// later one says why: the e2e framework orders equal names by start time, and process 2's
// may come first.
func (r *Run) record(junitName string, res Result) {
	name, results := testName(junitName), r.Results
	if !strings.HasPrefix(junitName, "[It] ") {
		results = r.Suite
	}
	if prev, ok := results[name]; ok && prev.Outcome == Failed &&
		(res.Outcome != Failed || !onOtherProcess.MatchString(prev.Reason)) {
		return
	}
	results[name] = res
}

// onOtherProcess matches the failure a parallel process reports when process 1's suite
// set-up failed (Ginkgo's SynchronizedBeforeSuiteFailedOnProc1 and DisappearedOnProc1).
var onOtherProcess = regexp.MustCompile(`^(SynchronizedBeforeSuite failed on Ginkgo parallel process #1|Process #1 disappeared)`)

// testName drops the "[It] " Ginkgo puts before a spec's text; suite nodes keep theirs
// ("[SynchronizedBeforeSuite]"): their failure fails the whole run.
func testName(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(s, "[It] "))
}

// reason is what a failure says, on one line. Ginkgo's description is "[STATE] MESSAGE\nIn
// [NODE] at: file:line @ time\n", where MESSAGE may have several lines (gomega's "Timed out
// after 120s.\nExpected ..."), then for a panic "\nVALUE\n\nFull Stack Trace\n...", for a
// timeout a progress report; the e2e framework omits the message attribute. A spec's node is
// named when it is not the It: a failure in a BeforeEach or an AfterEach.
func reason(f *failure) string {
	msg, node, after := splitFailure(f.Description)
	if strings.TrimSpace(f.Message) != "" {
		msg = f.Message
	}
	msg = stateTag.ReplaceAllString(ansi.ReplaceAllString(msg, ""), "")
	if v := panicValue(after); f.Type == "panicked" && v != "" {
		msg += ": " + v
	}
	if strings.TrimSpace(msg) == "" {
		msg = f.Type
	}
	if strings.TrimSpace(msg) == "" {
		msg = "failed (no message)"
	}
	if node != "" && node != "It" && !strings.Contains(node, "Suite") {
		msg += " (in [" + node + "])"
	}
	return oneLine(msg)
}

// stateTag is the "[FAILED]" (or PANICKED, TIMEDOUT ...) before Ginkgo's failure message.
var stateTag = regexp.MustCompile(`^\s*\[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\]`)

// failedIn is the line after Ginkgo's failure message that names the node that failed.
var failedIn = regexp.MustCompile(`^\s*In \[([^\]]+)\] at:`)

// splitFailure splits a Ginkgo failure description at its "In [NODE] at:" line.
func splitFailure(description string) (msg, node, after string) {
	lines := strings.Split(description, "\n")
	for i, line := range lines {
		if m := failedIn.FindStringSubmatch(line); m != nil {
			return strings.Join(lines[:i], "\n"), m[1], strings.Join(lines[i+1:], "\n")
		}
	}
	return description, "", ""
}

// panicValue is what a panicked spec's description has between its "In [It] at:" line and
// its stack trace.
func panicValue(after string) string {
	v, _, _ := strings.Cut(after, "Full Stack Trace")
	return strings.TrimSpace(v)
}

// readLines reads a file's non-empty lines.
func readLines(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// ansi matches terminal colour codes (the Ginkgo CLI's messages carry them; Go's XML
// encoder writes their ESC as U+FFFD).
var ansi = regexp.MustCompile("[\x1b\uFFFD]\\[[0-9;]*m")

// markdown escapes what Markdown would read as a table's column or an HTML tag.
var markdown = strings.NewReplacer("|", `\|`, "<", `\<`)

// oneLine makes a reason fit a table cell.
func oneLine(s string) string {
	s = ansi.ReplaceAllString(s, "")
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return markdown.Replace(s)
}

// Report writes the Markdown report of runs (the first is the reference: upstream).
func Report(w io.Writer, runs []*Run, now time.Time, note string) {
	all := testNames(runs)
	fmt.Fprintf(w, "# Upstream e2e Service conformance: %s\n\n", runTitles(runs))
	fmt.Fprintf(w, "Generated %s", now.UTC().Format(time.RFC3339))
	if note != "" {
		fmt.Fprintf(w, "; %s", note)
	}
	fmt.Fprintf(w, ".\n\n")
	counts(w, runs, all)
	if problems := Problems(runs); len(problems) > 0 {
		fmt.Fprintf(w, "\nResults missing (their tests count as not run):\n\n- %s\n", strings.Join(problems, "\n- "))
	}

	var differ []string
	for _, n := range all {
		for _, r := range runs[1:] {
			if r.Outcome(n) != runs[0].Outcome(n) {
				differ = append(differ, n)
				break
			}
		}
	}
	fmt.Fprintf(w, "\n## Tests whose outcome differs from %s's (%d)\n\n", runs[0].Name, len(differ))
	if len(differ) == 0 {
		fmt.Fprintf(w, "None.\n")
	} else {
		table(w, runs, differ)
	}

	fmt.Fprintf(w, "\n## Every test (%d)\n\n", len(all))
	table(w, runs, all)

	for _, want := range []Outcome{Failed, Skipped} {
		title := map[Outcome]string{Failed: "Failures", Skipped: "Skips (the test skipped itself at run time)"}[want]
		fmt.Fprintf(w, "\n## %s\n", title)
		found := false
		for _, r := range runs {
			// The suite nodes' failures first: they explain the tests that did not run.
			lines := reasons(r.Suite, sortedNames(r.Suite), want)
			lines = append(lines, reasons(r.Results, all, want)...)
			if len(lines) > 0 {
				found = true
				fmt.Fprintf(w, "\n### %s (%d)\n\n%s\n", r.Name, len(lines), strings.Join(lines, "\n"))
			}
		}
		if !found {
			fmt.Fprintf(w, "\nNone.\n")
		}
	}
	fmt.Fprintf(w, "\n## JUnit files\n\n")
	for _, r := range runs {
		fmt.Fprintf(w, "- %s: %s\n", r.Name, strings.Join(r.Files, ", "))
	}
}

// testNames are the tests of every run: their results and selections (not suite nodes).
func testNames(runs []*Run) []string {
	names := map[string]Result{}
	for _, r := range runs {
		for n := range r.Results {
			names[n] = Result{}
		}
		for _, n := range r.Selected {
			names[n] = Result{}
		}
	}
	return sortedNames(names)
}

func sortedNames(results map[string]Result) []string {
	var names []string
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// counts writes each run's counts of its own tests (those it selected): they add up to them.
func counts(w io.Writer, runs []*Run, all []string) {
	fmt.Fprintf(w, "## Counts\n\n| run | started | selected | passed | failed | skipped | not run | time |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		c := map[Outcome]int{}
		for _, n := range all {
			c[r.Outcome(n)]++
		}
		started := r.Started
		if started == "" {
			started = "—"
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %d | %s |\n", r.Name, started, len(all)-c[NotSelected],
			c[Passed], c[Failed], c[Skipped], c[Absent], (time.Duration(r.Seconds) * time.Second).String())
	}
	for i, r := range runs {
		if i == 0 {
			fmt.Fprintf(w, "\n")
		}
		about := r.About
		if about == "" {
			about = "this machine's run (no about.txt)"
		}
		fmt.Fprintf(w, "- %s: %s\n", r.Name, oneLine(about))
	}
}

// reasons are the "- NAME: REASON" lines of the results among names with outcome want.
func reasons(results map[string]Result, names []string, want Outcome) []string {
	var lines []string
	for _, n := range names {
		if res, ok := results[n]; ok && res.Outcome == want {
			lines = append(lines, fmt.Sprintf("- %s: %s", markdown.Replace(n), res.Reason))
		}
	}
	return lines
}

func table(w io.Writer, runs []*Run, names []string) {
	fmt.Fprintf(w, "| test |")
	for _, r := range runs {
		fmt.Fprintf(w, " %s |", r.Name)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(runs)))
	for _, n := range names {
		fmt.Fprintf(w, "| %s |", markdown.Replace(n))
		for _, r := range runs {
			fmt.Fprintf(w, " %s |", r.Outcome(n))
		}
		fmt.Fprintln(w)
	}
}

func runTitles(runs []*Run) string {
	var s []string
	for _, r := range runs {
		s = append(s, r.Name)
	}
	return strings.Join(s, " / ")
}

// Regressions are the tests that pass in the first run and not in a later one.
func Regressions(runs []*Run) []string {
	var out []string
	for n, res := range runs[0].Results {
		if res.Outcome != Passed {
			continue
		}
		for _, r := range runs[1:] {
			if o := r.Outcome(n); o != Passed {
				out = append(out, fmt.Sprintf("%s: %s in %s", n, o, r.Name))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Problems are the runs' missing or unreadable JUnit files, "RUN: PROBLEM", and, for a run
// without such a problem, its selected tests that have no result: a pass's JUnit file missing
// while the other's is there, or a suite set-up that failed (the reference run's tests then
// neither pass nor regress, and -strict must still fail).
func Problems(runs []*Run) []string {
	var out []string
	for _, r := range runs {
		for _, p := range r.Problems {
			out = append(out, r.Name+": "+p)
		}
		if n := r.notRun(); n > 0 && len(r.Problems) == 0 {
			out = append(out, fmt.Sprintf("%s: %d of its %d selected tests have no result (a pass's JUnit file missing, its suite set-up failed, or it stopped early)",
				r.Name, n, len(r.selected)))
		}
	}
	return out
}

// notRun counts the tests of the run's selection (selected.txt) that have no result.
func (r *Run) notRun() int {
	n := 0
	for name := range r.selected {
		if _, ok := r.Results[name]; !ok {
			n++
		}
	}
	return n
}
