package results

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// FormatRun is a run's figures and checks as text.
func FormatRun(r *Run) string {
	var b strings.Builder
	status := "PASS"
	if !r.Passed() {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "--- %s %s (%s)\n", status, r.Key(), r.Duration.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "    module: %s\n    sysctls: %s\n", r.Module, r.Sysctls)
	if len(r.Requests) > 0 {
		s := Summarize(r.Requests)
		lat := Latencies(r.Events)
		fmt.Fprintf(&b, "    requests %d, failed %d %s, longest failure window %s, longest port outage %s, ok but slower than 1 s %d (slowest %s), busy ports skipped %d\n",
			s.Requests, s.Failed, formatKinds(s.Kinds), s.Longest.Length().Round(time.Millisecond), s.PortOutage.Round(time.Millisecond), s.SlowOK, s.SlowestOK.Round(time.Millisecond), s.BusyPorts)
		fmt.Fprintf(&b, "    sync latency (API write -> kernel): median %s, max %s over %d writes\n",
			Median(lat).Round(time.Millisecond), Max(lat).Round(time.Millisecond), len(lat))
	}
	writeFailures(&b, r.Requests)
	for _, st := range r.Streams {
		fmt.Fprintf(&b, "    stream %s to %s (lost %v): %s after %s %s\n", st.Case, st.Pod, st.Lost, kindOrRunning(st.Kind), st.After.Round(time.Millisecond), st.Err)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "    %s\n", n)
	}
	for _, c := range r.Checks {
		mark := "ok  "
		switch {
		case !c.OK && c.Informational:
			mark = "no (informational)"
		case !c.OK:
			mark = "FAIL"
		case c.Informational:
			mark = "yes (informational)"
		}
		fmt.Fprintf(&b, "    [%s] %s\n", mark, c.Name)
		if !c.OK && !c.Informational && c.Detail != "" {
			fmt.Fprintf(&b, "           %s\n", strings.ReplaceAll(strings.TrimSpace(c.Detail), "\n", "\n           "))
		}
	}
	return b.String()
}

func kindOrRunning(kind string) string {
	if kind == "" {
		return "still running"
	}
	return kind
}

// formatKinds is "(reset=2 connect-timeout=5)", or "" for none.
func formatKinds(kinds map[string]int) string {
	if len(kinds) == 0 {
		return ""
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, kinds[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// maxListedFailures bounds the failed requests FormatRun lists.
const maxListedFailures = 8

// writeFailures lists the first failed requests and the first slow ones, each with the
// pod its source port reached last before it (a slow request's first SYN was most
// likely dropped on that pod's old connection entry).
func writeFailures(b *strings.Builder, reqs []Request) {
	sorted := append([]Request(nil), reqs...)
	SortRequests(sorted)
	last := map[int]Request{}
	failed, slow := &listing{what: "failed"}, &listing{what: "slow"}
	for _, r := range sorted {
		prev := "none"
		if p, ok := last[r.Port]; ok {
			prev = fmt.Sprintf("%s at t=%.3fs", p.Pod, p.Start.Seconds())
		}
		switch {
		case !r.OK():
			failed.add(b, fmt.Sprintf("t=%.3fs +%s port %d (last answered by %s) %s: %s",
				r.Start.Seconds(), r.Dur.Round(time.Millisecond), r.Port, prev, r.Kind, r.Err))
		case r.Slow():
			slow.add(b, fmt.Sprintf("t=%.3fs +%s port %d (last answered by %s) answered by %s",
				r.Start.Seconds(), r.Dur.Round(time.Millisecond), r.Port, prev, r.Pod))
		}
		if r.OK() {
			last[r.Port] = r
		}
	}
	failed.close(b)
	slow.close(b)
}

// listing prints the first maxListedFailures lines of one kind and counts the rest.
type listing struct {
	what          string
	listed, total int
}

func (l *listing) add(b *strings.Builder, line string) {
	l.total++
	if l.listed < maxListedFailures {
		l.listed++
		fmt.Fprintf(b, "    %s: %s\n", l.what, line)
	}
}

func (l *listing) close(b *strings.Builder) {
	if l.total > l.listed {
		fmt.Fprintf(b, "    ... %d %s requests in all\n", l.total, l.what)
	}
}
