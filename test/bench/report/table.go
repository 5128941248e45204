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

// result is one side at one size, of either group.
type result interface{ results.Fakes | results.Kernel }

// row is one line of a table: a name and how to read it.
type row[T result] struct {
	name  string
	value func(T) float64
	unit  func(float64) string
}

type fakesRow = row[results.Fakes]

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
	writeHeader(w, sides, ratios)
	for _, n := range sizes(fakes) {
		writeRows(w, fakes, n, sides, ratios, fakesRows())
	}
}

// writeHeader writes a table's header: the sides, then the ratios.
func writeHeader(w io.Writer, sides []string, ratios [][2]string) {
	fmt.Fprintf(w, "| services | measure | %s |", strings.Join(sides, " | "))
	for _, r := range ratios {
		fmt.Fprintf(w, " %s ÷ %s |", r[0], r[1])
	}
	fmt.Fprintf(w, "\n|---:|---|%s%s\n", strings.Repeat("---:|", len(sides)), strings.Repeat("---:|", len(ratios)))
}

// writeRows writes the rows of size n: each side's figure, then each ratio.
func writeRows[T result](w io.Writer, all []T, n int, sides []string, ratios [][2]string, rows []row[T]) {
	for _, row := range rows {
		fmt.Fprintf(w, "| %d | %s |", n, row.name)
		for _, s := range sides {
			r, ok := find(all, s, n)
			fmt.Fprintf(w, " %s |", cell(ok, r, row))
		}
		for _, pair := range ratios {
			up, upOK := find(all, pair[0], n)
			r, ok := find(all, pair[1], n)
			fmt.Fprintf(w, " %s |", ratio(upOK && ok, row.value(up), row.value(r)))
		}
		fmt.Fprintln(w)
	}
}

func cell[T result](ok bool, r T, row row[T]) string {
	if !ok {
		return "–"
	}
	return row.unit(row.value(r))
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
func presentSides[T result](all []T) []string {
	var out []string
	for _, s := range []string{results.Ours, results.OursNetlink, results.Upstream, results.UpstreamNFTables} {
		if slices.ContainsFunc(all, func(r T) bool { return sideOf(r) == s }) {
			out = append(out, s)
		}
	}
	return out
}

func sizes[T result](all []T) []int {
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

// sideAndSize says whose result r is and at how many services.
func sideAndSize[T result](r T) (string, int) {
	switch v := any(r).(type) {
	case results.Fakes:
		return v.Side, v.Services
	case results.Kernel:
		return v.Side, v.Services
	}
	return "", 0
}

func sideOf[T result](r T) string { s, _ := sideAndSize(r); return s }

func servicesOf[T result](r T) int { _, n := sideAndSize(r); return n }

// find returns side's result at n services.
func find[T result](all []T, side string, n int) (T, bool) {
	for _, r := range all {
		if s, size := sideAndSize(r); s == side && size == n {
			return r, true
		}
	}
	var zero T
	return zero, false
}

// kernelRows are the VM group's figures. IPVS sides: endpoints are real
// servers; upstream-nftables: DNAT targets in its table ip kube-proxy.
func kernelRows() []row[results.Kernel] {
	return []row[results.Kernel]{
		{"start to all endpoints in the kernel (real servers / DNAT rules)", func(k results.Kernel) float64 { return k.ProgramSeconds }, seconds},
		{"start to first syncs done, none queued", func(k results.Kernel) float64 { return k.SettleSeconds }, seconds},
		{"full sync (periodic, mean; nftables: at start)", func(k results.Kernel) float64 { return k.FullSyncSeconds }, seconds},
		{"update to endpoint gone from the kernel: p50", func(k results.Kernel) float64 { return k.LatencyP50 }, seconds},
		{"update to endpoint gone from the kernel: p99", func(k results.Kernel) float64 { return k.LatencyP99 }, seconds},
		{"update to endpoint gone from the kernel: max", func(k results.Kernel) float64 { return k.LatencyMax }, seconds},
		{"idle CPU per 60 s: proxier", func(k results.Kernel) float64 { return per60s(k.IdleCPUSeconds, k.IdleSeconds) }, seconds},
		{"idle CPU per 60 s: commands it ran", func(k results.Kernel) float64 { return per60s(k.IdleChildCPUSeconds, k.IdleSeconds) }, seconds},
		{"peak RSS", func(k results.Kernel) float64 { return float64(k.PeakRSSBytes) }, bytes},
	}
}

// per60s is cpu used in a window of window seconds, per 60 s: windows of
// several sync periods count their full syncs more evenly than one of 60 s
// (which held one or three of ours at a 30 s period). A window not
// recorded (0) gives cpu as it is.
func per60s(cpu, window float64) float64 {
	if window <= 0 {
		return cpu
	}
	return cpu * 60 / window
}

// KernelTable writes the VM group as a markdown table (every side, and
// each of upstream's figures divided by ours), then each run's note.
func KernelTable(w io.Writer, kernel []results.Kernel) {
	sides := presentSides(kernel)
	ratios := ratioColumns(sides)
	writeHeader(w, sides, ratios)
	for _, n := range sizes(kernel) {
		writeRows(w, kernel, n, sides, ratios, kernelRows())
		fmt.Fprintf(w, "| %d | updates timed; idle window; syncs in it (all families) |", n)
		for _, s := range sides {
			if k, ok := find(kernel, s, n); ok {
				fmt.Fprintf(w, " %d; %.0f s; %d |", k.Updates, k.IdleSeconds, k.IdleSyncs)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintf(w, "%s\n", strings.Repeat(" |", len(ratios)))
	}
	for _, k := range kernel {
		if k.Note != "" {
			fmt.Fprintf(w, "\n- %s at %d services: %s", k.Side, k.Services, k.Note)
		}
	}
	fmt.Fprintln(w)
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
