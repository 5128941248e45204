package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/fakes"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/report"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

// childCommand is how the parent runs one side at one size in a child.
const childCommand = "fakes-child"

type fakesFlags struct {
	sizes, sides string
	runs         int
	slowRun      time.Duration
	one, hundred int
	added        int
	budget       time.Duration
	out          string
}

func runFakes(ctx context.Context, args []string) error {
	var f fakesFlags
	fs := flag.NewFlagSet("fakes", flag.ContinueOnError)
	fs.StringVar(&f.sizes, "sizes", "1000,10000,30000", "cluster sizes (services, 10 endpoints each)")
	fs.StringVar(&f.sides, "sides", strings.Join([]string{results.Ours, results.OursNetlink, results.Upstream, results.UpstreamNFTables}, ","), "sides to run")
	fs.IntVar(&f.runs, "runs", 3, "processes per side and size (medians across them)")
	fs.DurationVar(&f.slowRun, "slow-run", 90*time.Second, "a side and size whose first process took longer runs once")
	fs.IntVar(&f.one, "one", 15, "single-endpoint removals per process")
	fs.IntVar(&f.hundred, "hundred", 5, "batches of 100 replaced endpoints per process")
	fs.IntVar(&f.added, "added", 5, "Services added one at a time per process")
	fs.DurationVar(&f.budget, "budget", 30*time.Second, "time cap for each kind of change per process (one iteration always runs)")
	fs.StringVar(&f.out, "out", "_output/bench/fakes.json", "results file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := parseSizes(f.sizes)
	if err != nil {
		return err
	}
	run := results.NewRun()
	for _, n := range sizes {
		for _, side := range strings.Split(f.sides, ",") {
			r, err := runSide(f, side, n)
			if err != nil {
				return err
			}
			run.Fakes = append(run.Fakes, r)
		}
	}
	run.Finish()
	run.Notes = append(run.Notes, fmt.Sprintf("load average %.1f before, %.1f after, on %d CPUs", run.LoadBefore, run.LoadAfter, run.CPUs))
	report.FakesTable(os.Stdout, run.Fakes)
	return run.Write(f.out)
}

// runSide runs one side at one size in f.runs child processes (one when
// the first is slow) and takes the medians.
func runSide(f fakesFlags, side string, n int) (results.Fakes, error) {
	var all []results.Fakes
	for i := range f.runs {
		fmt.Fprintf(os.Stderr, "==> [%s] fakes: %s, %d services, process %d/%d (load %.1f)\n",
			time.Now().Format("15:04:05"), side, n, i+1, f.runs, results.Load())
		start := time.Now()
		r, err := runChild(f, side, n)
		if err != nil {
			return results.Fakes{}, err
		}
		fmt.Fprintf(os.Stderr, "    full sync %s, one removed %s (%d calls), 100 replaced %s (%d calls), 1 Service added %s (%d calls), %.0fs\n",
			time.Duration(r.FullSync.Seconds*1e9).Round(time.Microsecond), time.Duration(r.OneRemoved.Seconds*1e9).Round(time.Microsecond),
			r.OneRemoved.KernelCalls, time.Duration(r.HundredChanged.Seconds*1e9).Round(time.Microsecond), r.HundredChanged.KernelCalls,
			time.Duration(r.ServiceAdded.Seconds*1e9).Round(time.Microsecond), r.ServiceAdded.KernelCalls, time.Since(start).Seconds())
		all = append(all, r)
		if time.Since(start) > f.slowRun {
			break
		}
	}
	return medianFakes(all), nil
}

func runChild(f fakesFlags, side string, n int) (results.Fakes, error) {
	args := []string{childCommand, "-side", side, "-services", strconv.Itoa(n), "-one", strconv.Itoa(f.one),
		"-hundred", strconv.Itoa(f.hundred), "-added", strconv.Itoa(f.added), "-budget", f.budget.String()}
	var out bytes.Buffer
	if err := upstreamproxier.RunInNewNetns(args, nil, &out, os.Stderr); err != nil {
		return results.Fakes{}, fmt.Errorf("measure %s at %d services: %w", side, n, err)
	}
	var r results.Fakes
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("decode the result of %s at %d services: %w (output %q)", side, n, err, out.String())
	}
	return r, nil
}

// runFakesChild is the child: one side, one size, the result as JSON on stdout.
func runFakesChild(ctx context.Context, args []string) error {
	var o fakes.Options
	fs := flag.NewFlagSet(childCommand, flag.ContinueOnError)
	fs.StringVar(&o.Side, "side", results.Ours, "side")
	fs.IntVar(&o.Services, "services", 1000, "services")
	fs.IntVar(&o.OneRemoved, "one", 15, "single removals")
	fs.IntVar(&o.HundredChanged, "hundred", 5, "batches of 100")
	fs.IntVar(&o.ServiceAdded, "added", 5, "Services added one at a time")
	fs.DurationVar(&o.Budget, "budget", 30*time.Second, "time cap per kind of change")
	fs.StringVar(&o.HeapProfile, "heap-profile", "", "write a heap profile after the first sync")
	fs.StringVar(&o.CPUProfile, "cpu-profile", "", "write a CPU profile of the first sync")
	fs.StringVar(&o.RemovedProfile, "removed-profile", "", "write a heap profile after the single-endpoint removals (pprof -base the -heap-profile one: what they allocated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := fakes.Run(ctx, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, errors.Join(fmt.Errorf("bad size %q", f), err)
		}
		out = append(out, n)
	}
	return out, nil
}

// medianFakes takes the median of every figure across processes.
func medianFakes(all []results.Fakes) results.Fakes {
	out := all[0]
	out.Runs = len(all)
	med := func(get func(results.Fakes) float64) float64 {
		v := make([]float64, len(all))
		for i, r := range all {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out.FullSync = medianMeasure(all, func(r results.Fakes) results.Measure { return r.FullSync })
	out.OneRemoved = medianMeasure(all, func(r results.Fakes) results.Measure { return r.OneRemoved })
	out.HundredChanged = medianMeasure(all, func(r results.Fakes) results.Measure { return r.HundredChanged })
	out.ServiceAdded = medianMeasure(all, func(r results.Fakes) results.Measure { return r.ServiceAdded })
	out.RetainedBytes = int64(med(func(r results.Fakes) float64 { return float64(r.RetainedBytes) }))
	for _, r := range all {
		out.Capped = out.Capped || r.Capped
	}
	return out
}

func medianMeasure(all []results.Fakes, get func(results.Fakes) results.Measure) results.Measure {
	med := func(f func(results.Measure) float64) float64 {
		v := make([]float64, len(all))
		for i, r := range all {
			v[i] = f(get(r))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return results.Measure{
		Iterations:       get(all[0]).Iterations,
		Seconds:          med(func(m results.Measure) float64 { return m.Seconds }),
		KernelCalls:      int(med(func(m results.Measure) float64 { return float64(m.KernelCalls) })),
		KernelOperations: int(med(func(m results.Measure) float64 { return float64(m.KernelOperations) })),
		InFakeSeconds:    med(func(m results.Measure) float64 { return m.InFakeSeconds }),
		InFakeAllocBytes: int64(med(func(m results.Measure) float64 { return float64(m.InFakeAllocBytes) })),
		AllocBytes:       int64(med(func(m results.Measure) float64 { return float64(m.AllocBytes) })),
		Allocs:           int64(med(func(m results.Measure) float64 { return float64(m.Allocs) })),
		PeakHeapBytes:    int64(med(func(m results.Measure) float64 { return float64(m.PeakHeapBytes) })),
	}
}
