package results

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// Plot geometry of FailuresSVG.
const (
	plotWidth   = 960
	plotLeft    = 210
	plotRight   = 20
	panelHeight = 110
	panelGap    = 28
	plotTop     = 48
	binWidth    = 500 * time.Millisecond
)

// FailuresSVG plots, for every rolling-update run, requests per half second: successes
// grey, failures red, with the update's steps as vertical lines (blue: new pod ready,
// orange: old endpoint terminating, purple: removed, black: pod killed).
func FailuresSVG(runs []*Run) string {
	return RequestsSVG("Rolling update under source-port reuse", ofScenario(runs, ScenarioRolling))
}

// RequestsSVG plots every run's requests per half second under title, as FailuresSVG does.
func RequestsSVG(title string, runs []*Run) string {
	height := plotTop + len(runs)*(panelHeight+panelGap) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s: requests per %s (grey ok, red failed)</text>`+"\n", html.EscapeString(title), binWidth)
	fmt.Fprintf(&b, `<text x="10" y="34" fill="#555">each panel has its own time scale; lines: <tspan fill="#1f77b4">new pod ready</tspan>, <tspan fill="#ff7f0e">old endpoint terminating</tspan>, <tspan fill="#9467bd">removed</tspan>, pod killed (black)</text>`+"\n")
	for i, r := range runs {
		writePanel(&b, r, plotTop+i*(panelHeight+panelGap), runEnd(r))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func writePanel(b *strings.Builder, r *Run, top int, end time.Duration) {
	ok, bad := bins(r.Requests, end)
	peak := 1
	for i := range ok {
		peak = max(peak, ok[i]+bad[i])
	}
	s := Summarize(r.Requests)
	fmt.Fprintf(b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", top+16, html.EscapeString(r.Proxy))
	fmt.Fprintf(b, `<text x="10" y="%d">kernel: %s</text>`+"\n", top+32, html.EscapeString(r.Profile))
	fmt.Fprintf(b, `<text x="10" y="%d" fill="%s">%d of %d failed</text>`+"\n", top+48, failColor(s.Failed), s.Failed, s.Requests)
	fmt.Fprintf(b, `<text x="10" y="%d">longest window %.1f s</text>`+"\n", top+64, s.Longest.Length().Seconds())
	width := float64(plotWidth - plotLeft - plotRight)
	x := func(d time.Duration) float64 { return plotLeft + width*d.Seconds()/end.Seconds() }
	y := func(n int) float64 {
		return float64(top+panelHeight) - float64(panelHeight-10)*float64(n)/float64(peak)
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#ccc"/>`+"\n", plotLeft, top, width, panelHeight)
	barW := math.Max(1, width*binWidth.Seconds()/end.Seconds()-1)
	for i := range ok {
		at := time.Duration(i) * binWidth
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#bbb"/>`+"\n", x(at), y(ok[i]), barW, y(0)-y(ok[i]))
		if bad[i] > 0 {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d62728"/>`+"\n", x(at), y(ok[i]+bad[i]), barW, y(ok[i])-y(ok[i]+bad[i]))
		}
	}
	for _, e := range r.Events {
		if c := eventColor(e.What); c != "" {
			fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" stroke-width="1.5"><title>%s</title></line>`+"\n",
				x(e.At), x(e.At), top, top+panelHeight, c, html.EscapeString(fmt.Sprintf("t=%.2fs %s", e.At.Seconds(), e.What)))
		}
	}
	writeAxis(b, top+panelHeight, end, x)
}

func writeAxis(b *strings.Builder, base int, end time.Duration, x func(time.Duration) float64) {
	step := 5 * time.Second
	switch {
	case end > 4*time.Minute:
		step = time.Minute
	case end > 90*time.Second:
		step = 20 * time.Second
	case end > 40*time.Second:
		step = 10 * time.Second
	}
	for t := time.Duration(0); t <= end; t += step {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%.0fs</text>`+"\n", x(t), base+13, t.Seconds())
	}
}

func bins(reqs []Request, end time.Duration) (ok, bad []int) {
	n := int(end/binWidth) + 1
	ok, bad = make([]int, n), make([]int, n)
	for _, r := range reqs {
		i := min(n-1, int(r.Start/binWidth))
		if r.OK() {
			ok[i]++
		} else {
			bad[i]++
		}
	}
	return ok, bad
}

func eventColor(what string) string {
	switch {
	case strings.HasSuffix(what, " ready"):
		return "#1f77b4"
	case strings.HasSuffix(what, " terminating"):
		return "#ff7f0e"
	case strings.Contains(what, "removed"):
		return "#9467bd"
	case strings.Contains(what, "killed"):
		return "#000"
	}
	return ""
}

func failColor(failed int) string {
	if failed > 0 {
		return "#d62728"
	}
	return "#2ca02c"
}

// runEnd is when a run's last request ended (at least a second).
func runEnd(r *Run) time.Duration {
	end := time.Second
	for _, q := range r.Requests {
		end = max(end, q.End())
	}
	return end
}
