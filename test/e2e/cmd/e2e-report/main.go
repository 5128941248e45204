// Command e2e-report reads the output of e2e-driver runs (the VM's guest logs), prints
// the scenario 2 and 3 tables and every run's checks, and writes results.json, report.md
// and failures.svg into -out.
//
//	e2e-report -out _output/e2e -title "..." LOG...
//
// It exits 1 when a log cannot be decoded or a run named by -want is missing.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

func main() {
	out := flag.String("out", "_output/e2e", "directory for results.json, report.md and failures.svg")
	title := flag.String("title", "ipvs-proxy e2e results", "report title")
	env := flag.String("environment", "", "text describing the machine and the VM")
	want := flag.String("want", "", "comma-separated scenario/profile/proxy keys that must be present")
	flag.Parse()
	if err := run(*out, *title, *env, *want, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-report:", err)
		os.Exit(1)
	}
}

func run(out, title, env, want string, logs []string) error {
	runs, err := readLogs(logs)
	if err != nil {
		return err
	}
	results.SortRuns(runs)
	printTables(runs)
	if err := write(out, title, env, runs); err != nil {
		return err
	}
	return missing(runs, want)
}

func readLogs(paths []string) ([]*results.Run, error) {
	var all []*results.Run
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		runs, err := results.DecodeLog(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", p, err)
		}
		all = append(all, runs...)
	}
	return all, nil
}

func printTables(runs []*results.Run) {
	if t := results.RollingTable(runs); len(t.Rows) > 0 {
		fmt.Print("\nScenario 2: rolling update under source-port reuse\n\n" + t.Text())
	}
	if t := results.InflightTable(runs); len(t.Rows) > 0 {
		fmt.Print("\nScenario 3: in-flight connections to a lost pod\n\n" + t.Text())
	}
	fmt.Print("\nAll runs\n\n" + results.ChecksTable(runs).Text())
	if failed := results.FailedChecksText(runs); failed != "" {
		fmt.Print("\nFailed checks\n\n" + failed)
	}
}

func write(dir, title, env string, runs []*results.Run) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(withFigures(runs), "", " ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	in := results.ReportInput{Title: title, Generated: time.Now(), Environment: env}
	files := map[string][]byte{"results.json": data}
	if len(results.RollingTable(runs).Rows) > 0 {
		in.SVG = "failures.svg"
		files[in.SVG] = []byte(results.FailuresSVG(runs))
	}
	files["report.md"] = []byte(results.Markdown(in, runs))
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	fmt.Printf("\nreport: %s\n", filepath.Join(dir, "report.md"))
	return nil
}

// runJSON is a run in results.json: the run's fields, and the headline figures of its
// requests (failed, slower than 1 s, ...) when it made any.
type runJSON struct {
	*results.Run
	Figures *results.Figures `json:"figures,omitempty"`
}

func withFigures(runs []*results.Run) []runJSON {
	out := make([]runJSON, len(runs))
	for i, r := range runs {
		out[i].Run = r
		if len(r.Requests) > 0 {
			f := results.Summarize(r.Requests).Figures()
			out[i].Figures = &f
		}
	}
	return out
}

func missing(runs []*results.Run, want string) error {
	have := map[string]bool{}
	for _, r := range runs {
		have[r.Key()] = true
	}
	var absent []string
	for _, k := range strings.Split(want, ",") {
		if k != "" && !have[k] {
			absent = append(absent, k)
		}
	}
	if len(absent) > 0 {
		return fmt.Errorf("runs missing from the logs: %s", strings.Join(absent, ", "))
	}
	return nil
}
