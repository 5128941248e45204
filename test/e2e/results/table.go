package results

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Table is rows of cells with a header; it prints as aligned text or as Markdown.
type Table struct {
	Header []string
	Rows   [][]string
}

// Text renders the table with aligned columns.
func (t Table) Text() string {
	widths := make([]int, len(t.Header))
	for _, row := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range row {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders the table as a Markdown table.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n|")
	for range t.Header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.String()
}

// SortRuns orders runs by scenario, profile (stock first), then proxy (upstream, ours
// gate off, ours gate on).
func SortRuns(runs []*Run) {
	rank := map[string]int{"upstream": 0, "ours-gate-off": 1, "ours-gate-on": 2, "stock": 0, "legacy": 1}
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i], runs[j]
		if a.Scenario != b.Scenario {
			return a.Scenario < b.Scenario
		}
		if a.Profile != b.Profile {
			return rank[a.Profile] < rank[b.Profile]
		}
		return rank[a.Proxy] < rank[b.Proxy]
	})
}

func ofScenario(runs []*Run, scenario string) []*Run {
	var out []*Run
	for _, r := range runs {
		if r.Scenario == scenario {
			out = append(out, r)
		}
	}
	return out
}

// ms formats a duration in seconds with millisecond precision.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// RollingTable is scenario 2 side by side: one row per kernel profile and proxier.
func RollingTable(runs []*Run) Table {
	t := Table{Header: []string{"kernel profile", "proxier", "requests", "failed", "failure kinds", "longest failure window", "longest port outage", "ok but slower than 1 s (slowest)", "sync latency median / max", "IPVS sysctls (after the proxier's first sync)", "result"}}
	for _, r := range ofScenario(runs, ScenarioRolling) {
		s := Summarize(r.Requests)
		lat := Latencies(r.Events)
		t.Rows = append(t.Rows, []string{
			r.Profile, r.Proxy, fmt.Sprint(s.Requests), fmt.Sprint(s.Failed), strings.Trim(formatKinds(s.Kinds), "()"),
			ms(s.Longest.Length()), ms(s.PortOutage), fmt.Sprintf("%d (%s)", s.SlowOK, ms(s.SlowestOK)), ms(Median(lat)) + " / " + ms(Max(lat)),
			reuseSysctls(r.Sysctls), verdict(r),
		})
	}
	return t
}

// InflightTable is scenario 3 (inflight and lost-node): how long the client took to see
// each lost connection fail.
func InflightTable(runs []*Run) Table {
	t := Table{Header: []string{"kernel profile", "proxier", "pod lost by", "lost connections: how they ended", "time to failure", "other pod's connections", "result"}}
	for _, r := range append(ofScenario(runs, ScenarioInflight), ofScenario(runs, ScenarioLostNode)...) {
		for _, how := range []string{"kill", "cut", "node-lost", "flap"} {
			lost, kept := streamSummary(r.Streams, how)
			if lost == nil && kept == "" {
				continue
			}
			t.Rows = append(t.Rows, []string{r.Profile, r.Proxy, lossName(how), lost[0], lost[1], kept, verdict(r)})
		}
	}
	return t
}

func lossName(how string) string {
	switch how {
	case "cut":
		return "network cut, then killed"
	case "node-lost":
		return "node lost: network cut, Node Unknown, endpoint not ready"
	case "flap":
		return "control: endpoint not ready on a Ready Node, pod alive"
	}
	return "killed, network intact"
}

// streamSummary describes the lost streams (kinds; times) and the survivors of one case.
func streamSummary(streams []StreamResult, how string) ([]string, string) {
	var kinds, times []string
	survivors, alive := 0, 0
	for _, s := range streams {
		if s.Case != how {
			continue
		}
		if !s.Lost {
			survivors++
			if s.Kind == "" {
				alive++
			}
			continue
		}
		kinds = append(kinds, kindOrRunning(s.Kind))
		switch s.Kind {
		case "hung":
			times = append(times, "none within "+ms(s.After))
		case "":
			times = append(times, "none")
		default:
			times = append(times, ms(s.After))
		}
	}
	if kinds == nil && survivors == 0 {
		return nil, ""
	}
	return []string{strings.Join(kinds, ", "), strings.Join(times, ", ")}, fmt.Sprintf("%d of %d alive", alive, survivors)
}

// ChecksTable lists every run with its failed checks.
func ChecksTable(runs []*Run) Table {
	t := Table{Header: []string{"scenario", "kernel profile", "proxier", "checks", "result", "failed checks"}}
	for _, r := range runs {
		var failed []string
		for _, c := range r.Checks {
			if !c.OK {
				failed = append(failed, c.Name)
			}
		}
		t.Rows = append(t.Rows, []string{r.Scenario, r.Profile, r.Proxy, fmt.Sprint(len(r.Checks)), verdict(r), strings.Join(failed, "; ")})
	}
	return t
}

func verdict(r *Run) string {
	if !r.Passed() {
		return "FAIL"
	}
	for _, c := range r.Checks {
		if !c.OK {
			return "pass (expectations of ours not met: informational)"
		}
	}
	return "pass"
}

// reuseSysctls keeps the two sysctls that decide the reuse behaviour.
func reuseSysctls(all string) string {
	var keep []string
	for _, f := range strings.Fields(all) {
		if strings.HasPrefix(f, "conn_reuse_mode=") || strings.HasPrefix(f, "expire_nodest_conn=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, " ")
}

// maxFailedRequestsShown bounds the failed requests FailedChecksText lists per run.
const maxFailedRequestsShown = 5

// FailedChecksText lists, for every run that failed, its failed checks with their
// details and its first failed requests: what CI's tail must show to tell why.
func FailedChecksText(runs []*Run) string {
	var b strings.Builder
	for _, r := range runs {
		if r.Passed() {
			continue
		}
		fmt.Fprintf(&b, "%s/%s/%s:\n", r.Scenario, r.Profile, r.Proxy)
		for _, c := range r.Checks {
			if !c.OK && !c.Informational {
				fmt.Fprintf(&b, "  [FAIL] %s: %s\n", c.Name, c.Detail)
			}
		}
		shown := 0
		for _, q := range r.Requests {
			if q.OK() {
				continue
			}
			if shown == maxFailedRequestsShown {
				b.WriteString("  ...\n")
				break
			}
			fmt.Fprintf(&b, "  failed request: t=%.3fs +%s port %d %s: %s\n", q.Start.Seconds(), q.Dur.Round(time.Millisecond), q.Port, q.Kind, q.Err)
			shown++
		}
	}
	return b.String()
}
