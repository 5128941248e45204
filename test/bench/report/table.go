// Package report turns benchmark results into a markdown table and an SVG
// plot of sync time against cluster size.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// fakesRow is one line of the fakes table: a name and how to read it.
type fakesRow struct {
	name  string
	value func(results.Fakes) float64
	unit  func(float64) string
}

func fakesRows() []fakesRow {
	return []fakesRow{
		{"first full sync: time", func(f results.Fakes) float64 { return f.FullSync.Seconds }, seconds},
		{"first full sync: kernel calls", func(f results.Fakes) float64 { return float64(f.FullSync.KernelCalls) }, count},
		{"first full sync: allocated", func(f results.Fakes) float64 { return float64(f.FullSync.AllocBytes) }, bytes},
		{"first full sync: time, upstream-nftables less knftables' Fake's share", func(f results.Fakes) float64 { return f.FullSync.Seconds - f.FullSync.InFakeSeconds }, seconds},
		{"first full sync: allocated, upstream-nftables less knftables' Fake's share", func(f results.Fakes) float64 {
			return float64(f.FullSync.AllocBytes - f.FullSync.InFakeAllocBytes)
		}, bytes},
		{"first full sync: peak heap", func(f results.Fakes) float64 { return float64(f.FullSync.PeakHeapBytes) }, bytes},
		{"heap kept by the proxier", func(f results.Fakes) float64 { return float64(f.RetainedBytes) }, bytes},
		{"1 endpoint removed: time", func(f results.Fakes) float64 { return f.OneRemoved.Seconds }, seconds},
		{"1 endpoint removed: kernel calls", func(f results.Fakes) float64 { return float64(f.OneRemoved.KernelCalls) }, count},
		{"1 endpoint removed: allocated", func(f results.Fakes) float64 { return float64(f.OneRemoved.AllocBytes) }, bytes},
		{"100 endpoints replaced: time", func(f results.Fakes) float64 { return f.HundredChanged.Seconds }, seconds},
		{"100 endpoints replaced: kernel calls", func(f results.Fakes) float64 { return float64(f.HundredChanged.KernelCalls) }, count},
		{"100 endpoints replaced: allocated", func(f results.Fakes) float64 { return float64(f.HundredChanged.AllocBytes) }, bytes},
		{"1 Service added: time", func(f results.Fakes) float64 { return f.ServiceAdded.Seconds }, seconds},
		{"1 Service added: kernel calls", func(f results.Fakes) float64 { return float64(f.ServiceAdded.KernelCalls) }, count},
		{"1 Service added: allocated", func(f results.Fakes) float64 { return float64(f.ServiceAdded.AllocBytes) }, bytes},
	}
}

// anchors are the proxiers users would run instead of ours: each row
// gives each anchor's figure divided by each of ours.
var anchors = []string{results.Upstream, results.UpstreamNFTables}

// isAnchor says whether side is upstream's rather than ours.
func isAnchor(side string) bool { return slices.Contains(anchors, side) }

// ratioColumns are the (anchor, ours) pairs present in fakes.
func ratioColumns(sides []string) [][2]string {
	var out [][2]string
	for _, a := range sides {
		if !isAnchor(a) {
			continue
		}
		for _, s := range sides {
			if !isAnchor(s) {
				out = append(out, [2]string{a, s})
			}
		}
	}
	return out
}

// FakesTable writes the fakes group as a markdown table: every side at
// every size, and each of upstream's figures (IPVS, nftables) divided by
// each of ours.
func FakesTable(w io.Writer, fakes []results.Fakes) {
	sides := presentSides(fakes)
	ratios := ratioColumns(sides)
	fmt.Fprintf(w, "| services | measure | %s |", strings.Join(sides, " | "))
	for _, r := range ratios {
		fmt.Fprintf(w, " %s ÷ %s |", r[0], r[1])
	}
	fmt.Fprintf(w, "\n|---:|---|%s%s\n", strings.Repeat("---:|", len(sides)), strings.Repeat("---:|", len(ratios)))
	for _, n := range sizes(fakes) {
		for _, row := range fakesRows() {
			fmt.Fprintf(w, "| %d | %s |", n, row.name)
			for _, s := range sides {
				f, ok := find(fakes, s, n)
				fmt.Fprintf(w, " %s |", cell(ok, f, row))
			}
			for _, r := range ratios {
				up, upOK := find(fakes, r[0], n)
				f, ok := find(fakes, r[1], n)
				fmt.Fprintf(w, " %s |", ratio(upOK && ok, row.value(up), row.value(f)))
			}
			fmt.Fprintln(w)
		}
	}
}

func cell(ok bool, f results.Fakes, row fakesRow) string {
	if !ok {
		return "–"
	}
	return row.unit(row.value(f))
}

// FakesIterations lists how often each figure was measured.
func FakesIterations(w io.Writer, fakes []results.Fakes) {
	for _, f := range fakes {
		capped := ""
		if f.Capped {
			capped = " (capped by the time budget)"
		}
		fmt.Fprintf(w, "- %s at %d services: %d process(es); per process 1 full sync, %d single removals, %d batches of 100, %d Services added%s%s\n",
			f.Side, f.Services, f.Runs, f.OneRemoved.Iterations, f.HundredChanged.Iterations, f.ServiceAdded.Iterations,
			operations(f), capped)
	}
}

// operations describes the nftables side's kernel calls (each is one
// transaction or read, holding this many operations) and the share of its
// time and allocations spent inside knftables' Fake.
func operations(f results.Fakes) string {
	if f.Side != results.UpstreamNFTables {
		return ""
	}
	kinds := []struct {
		name string
		m    results.Measure
	}{{"full sync", f.FullSync}, {"1 removed", f.OneRemoved}, {"100 replaced", f.HundredChanged}, {"1 added", f.ServiceAdded}}
	var ops, fake []string
	for _, k := range kinds {
		ops = append(ops, fmt.Sprintf("%d (%s)", k.m.KernelOperations, k.name))
		fake = append(fake, fmt.Sprintf("%s of %s and %s of %s (%s)",
			seconds(k.m.InFakeSeconds), seconds(k.m.Seconds), bytes(float64(k.m.InFakeAllocBytes)), bytes(float64(k.m.AllocBytes)), k.name))
	}
	return fmt.Sprintf("; kernel calls are nft transactions and reads, holding %s operations; inside knftables' Fake: %s",
		strings.Join(ops, ", "), strings.Join(fake, ", "))
}

// presentSides orders the sides found: ours first, upstream's last.
func presentSides(fakes []results.Fakes) []string {
	var out []string
	for _, s := range []string{results.Ours, results.OursNetlink, results.Upstream, results.UpstreamNFTables} {
		if slices.ContainsFunc(fakes, func(f results.Fakes) bool { return f.Side == s }) {
			out = append(out, s)
		}
	}
	return out
}

func sizes[T interface{ results.Fakes | results.Kernel }](all []T) []int {
	var out []int
	for _, r := range all {
		n := servicesOf(r)
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func servicesOf[T interface{ results.Fakes | results.Kernel }](r T) int {
	switch v := any(r).(type) {
	case results.Fakes:
		return v.Services
	case results.Kernel:
		return v.Services
	}
	return 0
}

func find(fakes []results.Fakes, side string, n int) (results.Fakes, bool) {
	for _, f := range fakes {
		if f.Side == side && f.Services == n {
			return f, true
		}
	}
	return results.Fakes{}, false
}

// KernelTable writes the VM group as a markdown table, then each run's note.
func KernelTable(w io.Writer, kernel []results.Kernel) {
	rows := []struct {
		name  string
		value func(results.Kernel) float64
		unit  func(float64) string
	}{
		{"start to all real servers in IPVS", func(k results.Kernel) float64 { return k.ProgramSeconds }, seconds},
		{"start to first syncs done, none queued", func(k results.Kernel) float64 { return k.SettleSeconds }, seconds},
		{"full sync (periodic, mean)", func(k results.Kernel) float64 { return k.FullSyncSeconds }, seconds},
		{"update to real server gone: p50", func(k results.Kernel) float64 { return k.LatencyP50 }, seconds},
		{"update to real server gone: p99", func(k results.Kernel) float64 { return k.LatencyP99 }, seconds},
		{"update to real server gone: max", func(k results.Kernel) float64 { return k.LatencyMax }, seconds},
		{"CPU used in the idle window: proxier", func(k results.Kernel) float64 { return k.IdleCPUSeconds }, seconds},
		{"CPU used in the idle window: commands it ran", func(k results.Kernel) float64 { return k.IdleChildCPUSeconds }, seconds},
		{"peak RSS", func(k results.Kernel) float64 { return float64(k.PeakRSSBytes) }, bytes},
	}
	fmt.Fprintf(w, "| services | measure | %s | %s | %s ÷ %s |\n|---:|---|---:|---:|---:|\n",
		results.Ours, results.Upstream, results.Upstream, results.Ours)
	for _, n := range sizes(kernel) {
		ours, okO := findKernel(kernel, results.Ours, n)
		up, okU := findKernel(kernel, results.Upstream, n)
		for _, r := range rows {
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s |\n", n, r.name,
				kernelCell(okO, ours, r.value, r.unit), kernelCell(okU, up, r.value, r.unit),
				ratio(okO && okU, r.value(up), r.value(ours)))
		}
		fmt.Fprintf(w, "| %d | updates timed; idle window; syncs in it (all families) | %d; %.0f s; %d | %d; %.0f s; %d | |\n",
			n, ours.Updates, ours.IdleSeconds, ours.IdleSyncs, up.Updates, up.IdleSeconds, up.IdleSyncs)
	}
	for _, k := range kernel {
		if k.Note != "" {
			fmt.Fprintf(w, "\n- %s at %d services: %s", k.Side, k.Services, k.Note)
		}
	}
	fmt.Fprintln(w)
}

func kernelCell(ok bool, k results.Kernel, value func(results.Kernel) float64, unit func(float64) string) string {
	if !ok {
		return "–"
	}
	return unit(value(k))
}

func findKernel(all []results.Kernel, side string, n int) (results.Kernel, bool) {
	for _, k := range all {
		if k.Side == side && k.Services == n {
			return k, true
		}
	}
	return results.Kernel{}, false
}

func ratio(ok bool, up, ours float64) string {
	switch {
	case !ok:
		return "–"
	case ours == 0 && up == 0:
		return "="
	case ours == 0:
		return "∞"
	}
	r := up / ours
	if r >= 100 {
		return fmt.Sprintf("%.0f×", r)
	}
	if r >= 10 {
		return fmt.Sprintf("%.1f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

func seconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 1e-3:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.3g ms", s*1e3)
	}
	return fmt.Sprintf("%.3g s", s)
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }

func bytes(v float64) string {
	switch {
	case v < 1<<10:
		return fmt.Sprintf("%.0f B", v)
	case v < 1<<20:
		return fmt.Sprintf("%.3g KiB", v/(1<<10))
	case v < 1<<30:
		return fmt.Sprintf("%.3g MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.3g GiB", v/(1<<30))
}

// FlushTable writes the flush cost: per table size, the retiring partial
// sync and the flush alone with each conntrack implementation.
func FlushTable(w io.Writer, flush []results.Flush) {
	modes := []string{}
	entries := []int{}
	for _, f := range flush {
		if !slices.Contains(modes, f.Mode) {
			modes = append(modes, f.Mode)
		}
		if !slices.Contains(entries, f.Entries) {
			entries = append(entries, f.Entries)
		}
	}
	slices.Sort(entries)
	fmt.Fprint(w, "| conntrack entries |")
	for _, m := range modes {
		fmt.Fprintf(w, " sync, %s | flush, %s |", m, m)
	}
	fmt.Fprint(w, "\n|---:|")
	fmt.Fprint(w, strings.Repeat("---:|---:|", len(modes))+"\n")
	for _, n := range entries {
		fmt.Fprintf(w, "| %d |", n)
		for _, m := range modes {
			i := slices.IndexFunc(flush, func(f results.Flush) bool { return f.Entries == n && f.Mode == m })
			if i < 0 {
				fmt.Fprint(w, " - | - |")
				continue
			}
			fmt.Fprintf(w, " %s | %s |", seconds(flush[i].SyncSeconds), seconds(flush[i].FlushSeconds))
		}
		fmt.Fprintln(w)
	}
}
