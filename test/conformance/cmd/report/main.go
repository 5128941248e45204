// Command report turns the JUnit files of make conformance's runs (upstream's kube-proxy
// in ipvs mode, ipvs-proxy with the IPVSImmediateTermination gate off, and on) into one
// Markdown table: per test, pass/FAIL/skip per run, the tests whose outcome differs from
// the first run's, and every failure's and skip's reason.
//
//	report -out _output/conformance/report.md upstream=DIR gate-off=DIR gate-on=DIR
//
// Each DIR is a run's --report-dir (its junit*.xml, and junit*.xml.gz as keep.sh keeps
// them) or one JUnit file. With -strict it exits 1 when a test that passed in the first run did not pass in another, or
// when a run's results are missing (a JUnit file missing or unreadable, or selected tests
// without a result: one pass's JUnit file missing, a failed suite set-up).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "", "Markdown file to write (default: standard output)")
	note := flag.String("note", "", "a line for the header (commit, cluster)")
	strict := flag.Bool("strict", false, "exit 1 when a test that passed in the first run did not pass in another, or results are missing")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: report [-out FILE] [-note TEXT] [-strict] NAME=JUNIT_FILE_OR_DIR...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var runs []*Run
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok || name == "" || path == "" {
			fmt.Fprintf(os.Stderr, "report: %q: want NAME=PATH\n", arg)
			os.Exit(2)
		}
		run, err := ReadRun(name, path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "report: %v\n", err)
			os.Exit(1)
		}
		runs = append(runs, run)
	}
	var buf bytes.Buffer
	Report(&buf, runs, time.Now(), *note)
	if *out == "" {
		os.Stdout.Write(buf.Bytes())
	} else if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		os.Exit(1)
	}
	problems := Problems(runs)
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "report: results missing:\n  %s\n", strings.Join(problems, "\n  "))
	}
	reg := Regressions(runs)
	if len(reg) > 0 {
		fmt.Fprintf(os.Stderr, "report: %d test(s) passed in %s and not in another run:\n  %s\n",
			len(reg), runs[0].Name, strings.Join(reg, "\n  "))
	}
	if *strict && len(reg)+len(problems) > 0 {
		os.Exit(1)
	}
}
