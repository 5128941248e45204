package main

import (
	"bufio"
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
	// Absent: the run has no such test (not selected, or the run stopped first).
	Absent Outcome = iota
	Passed
	Failed
	// Skipped at run time (the test called Skip: a missing provider, too few nodes...).
	Skipped
)

func (o Outcome) String() string {
	return [...]string{"—", "pass", "FAIL", "skip"}[o]
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
	Seconds float64 // the suites' own time
	// Selected are the tests the run meant to run (hack/conformance/run.sh's dry run writes
	// them to selected.txt): one it has no result for did not run (a suite set-up failed,
	// or the run stopped).
	Selected []string
}

// junit is the part of Ginkgo v2's JUnit report (k8s.io/kubernetes' e2e framework
// writes it as junit_01.xml under --report-dir) that the report reads.
type junit struct {
	Suites []struct {
		Time  float64 `xml:"time,attr"`
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Status  string  `xml:"status,attr"`
			Time    float64 `xml:"time,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Failure *failure `xml:"failure"`
			Error   *failure `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type failure struct {
	Message     string `xml:"message,attr"`
	Type        string `xml:"type,attr"`
	Description string `xml:",chardata"`
}

// ReadRun reads a run from a JUnit file, or from a directory: its junit*.xml files (not
// those of subdirectories: run.sh keeps its dry run's in selection/) and selected.txt.
func ReadRun(name, path string) (*Run, error) {
	run := &Run{Name: name, Results: map[string]Result{}}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if info.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "junit*.xml"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("run %s: no junit*.xml in %s", name, path)
		}
		sort.Strings(files)
		if run.Selected, err = readLines(filepath.Join(path, "selected.txt")); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	for _, f := range files {
		if err := run.add(f); err != nil {
			return nil, fmt.Errorf("run %s: %w", name, err)
		}
	}
	run.Files = files
	return run, nil
}

func (r *Run) add(file string) error {
	data, err := os.ReadFile(file)
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
		for _, c := range s.Cases {
			name := testName(c.Name)
			res := Result{Seconds: c.Time}
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
					continue
				}
				res.Outcome, res.Reason = Skipped, oneLine(strings.TrimPrefix(msg, "skipped - "))
			case c.Status == "passed" || c.Status == "":
				res.Outcome = Passed
			default: // failed, timedout, panicked, interrupted, aborted without a body
				res.Outcome, res.Reason = Failed, c.Status
			}
			if prev, ok := r.Results[name]; ok && prev.Outcome == Failed {
				// A test reported twice (several files, or a suite node of every parallel
				// process): the first failure wins; later ones only say "failed on process #1".
				continue
			}
			r.Results[name] = res
		}
	}
	return nil
}

// testName drops the "[It] " Ginkgo puts before a spec's text; suite nodes keep theirs
// ("[SynchronizedBeforeSuite]"): their failure fails the whole run.
func testName(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(s, "[It] "))
}

// reason is the first line of a failure that says something: Ginkgo's description is
// "[FAILED] message\nIn [It] at: file:line @ time\n..." (the e2e framework omits the
// message attribute).
func reason(f *failure) string {
	text := f.Message
	if strings.TrimSpace(text) == "" {
		text = f.Description
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		for _, p := range []string{"[FAILED]", "[PANICKED]", "[TIMEDOUT]", "[INTERRUPTED]", "[ABORTED]"} {
			line = strings.TrimSpace(strings.TrimPrefix(line, p))
		}
		if line == "" || strings.HasPrefix(line, "In [") {
			continue
		}
		return oneLine(line)
	}
	if f.Type != "" {
		return f.Type
	}
	return "failed (no message)"
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

// oneLine makes a reason fit a table cell.
func oneLine(s string) string {
	s = ansi.ReplaceAllString(s, "")
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return strings.ReplaceAll(s, "|", `\|`)
}

// Report writes the Markdown report of runs (the first is the reference: upstream).
func Report(w io.Writer, runs []*Run, now time.Time, note string) {
	names := map[string]bool{}
	for _, r := range runs {
		for n := range r.Results {
			names[n] = true
		}
		for _, n := range r.Selected {
			names[n] = true
		}
	}
	var all []string
	for n := range names {
		all = append(all, n)
	}
	sort.Strings(all)

	fmt.Fprintf(w, "# Upstream e2e Service conformance: %s\n\n", runTitles(runs))
	fmt.Fprintf(w, "Generated %s", now.UTC().Format(time.RFC3339))
	if note != "" {
		fmt.Fprintf(w, "; %s", note)
	}
	fmt.Fprintf(w, ".\n\n## Counts\n\n| run | passed | failed | skipped | not run | time |\n|---|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		c := map[Outcome]int{}
		for _, n := range all {
			c[r.Results[n].Outcome]++
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s |\n", r.Name, c[Passed], c[Failed], c[Skipped], c[Absent],
			(time.Duration(r.Seconds) * time.Second).String())
	}

	var differ []string
	for _, n := range all {
		for _, r := range runs[1:] {
			if r.Results[n].Outcome != runs[0].Results[n].Outcome {
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
			var lines []string
			for _, n := range all {
				if res := r.Results[n]; res.Outcome == want {
					lines = append(lines, fmt.Sprintf("- %s: %s", n, res.Reason))
				}
			}
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

func table(w io.Writer, runs []*Run, names []string) {
	fmt.Fprintf(w, "| test |")
	for _, r := range runs {
		fmt.Fprintf(w, " %s |", r.Name)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(runs)))
	for _, n := range names {
		fmt.Fprintf(w, "| %s |", strings.ReplaceAll(n, "|", `\|`))
		for _, r := range runs {
			fmt.Fprintf(w, " %s |", r.Results[n].Outcome)
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
			if r.Results[n].Outcome != Passed {
				out = append(out, fmt.Sprintf("%s: %s in %s", n, r.Results[n].Outcome, r.Name))
			}
		}
	}
	sort.Strings(out)
	return out
}
