package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/report"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// runKernelLoad puts a benchmark cluster of the given size into the API server.
func runKernelLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kernel-load", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server")
	n := fs.Int("services", 1000, "services (10 endpoints each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	progress := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "    "+format+"\n", a...) }
	if err := kernel.Load(ctx, *kubeconfig, *n, progress); err != nil {
		return err
	}
	progress("loaded %d services in %.0f s", *n, time.Since(start).Seconds())
	return nil
}

// runKernelCollect turns the result lines of the VM runs into kernel.json.
func runKernelCollect(args []string) error {
	c, err := parseCollect("kernel-collect", "_output/bench/kernel-results.log", "_output/bench/kernel.json", args)
	if err != nil {
		return err
	}
	run, in, out, notes := c.run, &c.in, &c.out, c.notes
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("read VM results: %w", err)
	}
	defer f.Close()
	if run.Kernel, err = results.ReadKernelLines(f); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	run.Finish()
	run.Notes = append(run.Notes, notes...)
	report.KernelTable(os.Stdout, run.Kernel)
	return run.Write(*out)
}

// collect is what the collectors of VM result lines share: where to read
// and write, the notes, and the run they fill.
type collect struct {
	in, out string
	notes   multiFlag
	run     *results.Run
}

// parseCollect parses a collector's flags and starts its run.
func parseCollect(name, defaultIn, defaultOut string, args []string) (*collect, error) {
	c := &collect{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.in, "in", defaultIn, "VM output holding the result lines")
	fs.StringVar(&c.out, "out", defaultOut, "results file")
	started := fs.String("started", "", "RFC 3339 start of the runs")
	loadBefore := fs.Float64("load-before", 0, "load average when the runs started")
	fs.Var(&c.notes, "note", "a note for the report (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	c.run = results.NewRun()
	if t, err := time.Parse(time.RFC3339, *started); err == nil {
		c.run.Started = t
	}
	c.run.LoadBefore = *loadBefore
	return c, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// flushPrefix starts TestKernelFlushCost's result lines.
const flushPrefix = "BENCH-FLUSH-RESULT "

// runFlushCollect turns TestKernelFlushCost's result lines into flush.json.
func runFlushCollect(args []string) error {
	c, err := parseCollect("flush-collect", "_output/bench/flush-results.log", "_output/bench/flush.json", args)
	if err != nil {
		return err
	}
	run, in, out, notes := c.run, &c.in, &c.out, c.notes
	b, err := os.ReadFile(*in)
	if err != nil {
		return fmt.Errorf("read VM results: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		_, js, ok := strings.Cut(line, flushPrefix)
		if !ok {
			continue
		}
		var f results.Flush
		if err := json.Unmarshal([]byte(js), &f); err != nil {
			return fmt.Errorf("decode result line %q: %w", line, err)
		}
		run.Flush = append(run.Flush, f)
	}
	if len(run.Flush) == 0 {
		return fmt.Errorf("no %q lines in %s", flushPrefix, *in)
	}
	run.Finish()
	run.Notes = append(run.Notes, notes...)
	report.FlushTable(os.Stdout, run.Flush)
	return run.Write(*out)
}
