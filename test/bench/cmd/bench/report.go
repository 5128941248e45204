package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/report"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// runReport writes bench.md and sync-time.svg from the groups' results.
func runReport(args []string) error {
	flags := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := flags.String("dir", "_output/bench", "directory with fakes.json, kernel.json and flush.json; outputs go there too")
	if err := flags.Parse(args); err != nil {
		return err
	}
	fakesRun, err := readOptional(filepath.Join(*dir, "fakes.json"))
	if err != nil {
		return err
	}
	kernelRun, err := readOptional(filepath.Join(*dir, "kernel.json"))
	if err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString("# Proxier benchmarks: ours vs upstream's IPVS and nftables proxiers (v1.37.2)\n\n")
	writeGroup(&md, "## Fakes, in-process", fakesRun, func() {
		report.FakesTable(&md, fakesRun.Fakes)
		md.WriteString("\nIterations (figures are medians):\n\n")
		report.FakesIterations(&md, fakesRun.Fakes)
	})
	writeGroup(&md, "## Real kernel, in the VM", kernelRun, func() { report.KernelTable(&md, kernelRun.Kernel) })
	flushRun, err := readOptional(filepath.Join(*dir, "flush.json"))
	if err != nil {
		return err
	}
	writeGroup(&md, "## Flush cost: retiring one real server (immediate policy) vs conntrack table size, in the VM", flushRun,
		func() { report.FlushTable(&md, flushRun.Flush) })
	if err := writeGoBench(&md, filepath.Join(*dir, "go-bench.txt")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*dir, "bench.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write bench.md: %w", err)
	}
	svg, err := os.Create(filepath.Join(*dir, "sync-time.svg"))
	if err != nil {
		return fmt.Errorf("create sync-time.svg: %w", err)
	}
	defer svg.Close()
	var fk []results.Fakes
	var kr []results.Kernel
	if fakesRun != nil {
		fk = fakesRun.Fakes
	}
	if kernelRun != nil {
		kr = kernelRun.Kernel
	}
	if err := report.Plot(svg, fk, kr); err != nil {
		return fmt.Errorf("write sync-time.svg: %w", err)
	}
	fmt.Println(md.String())
	return nil
}

func writeGroup(md *strings.Builder, title string, run *results.Run, table func()) {
	md.WriteString(title + "\n\n")
	if run == nil {
		md.WriteString("Not run.\n\n")
		return
	}
	fmt.Fprintf(md, "Run %s to %s on %d CPUs, load average %.1f before and %.1f after (machine shared).\n\n",
		run.Started.Format("2006-01-02 15:04"), run.Finished.Format("15:04"), run.CPUs, run.LoadBefore, run.LoadAfter)
	table()
	for _, n := range run.Notes {
		md.WriteString("\n- " + n)
	}
	md.WriteString("\n\n")
}

func readOptional(path string) (*results.Run, error) {
	r, err := results.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return r, err
}

// writeGoBench quotes the benchmark lines of pkg/proxy/ipvs's -benchmem run.
func writeGoBench(md *strings.Builder, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	md.WriteString("## Allocations per sync: pkg/proxy/ipvs benchmarks (-benchmem, our fakes)\n\n")
	md.WriteString("BenchmarkOneEndpointRemoved and BenchmarkNothingChanged allocate the same at every size:\n" +
		"a partial sync allocates nothing in proportion to the cluster.\n\n```\n")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Benchmark") {
			md.WriteString(line + "\n")
		}
	}
	md.WriteString("```\n")
	return nil
}
