package report

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// point is one measurement: x services, y seconds.
type point struct{ x, y float64 }

// series is one line of a panel.
type series struct {
	name   string
	color  string
	dash   string // SVG stroke-dasharray, "" for solid
	points []point
}

// panel is one log-log chart.
type panel struct {
	title  string
	series []series
}

const (
	panelW, panelH = 620, 480 // room for the legend of four sides
	marginL        = 70
	marginR        = 20
	marginT        = 40
	plotH          = 250 // the legend goes below
)

var sideColor = map[string]string{results.Ours: "#1f77b4", results.OursNetlink: "#17becf", results.Upstream: "#d62728", results.UpstreamNFTables: "#2ca02c"}

// Plot writes an SVG of sync time against cluster size: one panel for the
// fakes, one for the real kernel when there are kernel results.
func Plot(w io.Writer, fakes []results.Fakes, kernel []results.Kernel) error {
	panels := []panel{fakesPanel(fakes)}
	if len(kernel) > 0 {
		panels = append(panels, kernelPanel(kernel))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n",
		panelW*len(panels), panelH)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	for i, p := range panels {
		p.draw(&b, float64(i*panelW))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// kind is one measure drawn for every side: its name and line style.
type kind[T result] struct {
	name, dash string
	value      func(T) float64
}

func fakesPanel(fakes []results.Fakes) panel {
	return panelOf("Fakes, in-process: sync time vs services", fakes, []kind[results.Fakes]{
		{"first full sync", "", func(f results.Fakes) float64 { return f.FullSync.Seconds }},
		{"100 endpoints replaced", "6,3", func(f results.Fakes) float64 { return f.HundredChanged.Seconds }},
		{"1 endpoint removed", "2,3", func(f results.Fakes) float64 { return f.OneRemoved.Seconds }},
	})
}

func kernelPanel(kernel []results.Kernel) panel {
	return panelOf("Real kernel (VM): sync time and update latency", kernel, []kind[results.Kernel]{
		{"full sync", "", func(k results.Kernel) float64 { return k.FullSyncSeconds }},
		{"update→gone p99", "6,3", func(k results.Kernel) float64 { return k.LatencyP99 }},
		{"update→gone p50", "2,3", func(k results.Kernel) float64 { return k.LatencyP50 }},
	})
}

// panelOf draws each kind for each side present: a line over the sizes, in
// the side's colour and the kind's dash.
func panelOf[T result](title string, all []T, kinds []kind[T]) panel {
	p := panel{title: title}
	for _, k := range kinds {
		for _, side := range presentSides(all) {
			s := series{name: side + ": " + k.name, color: sideColor[side], dash: k.dash}
			for _, n := range sizes(all) {
				if r, ok := find(all, side, n); ok && k.value(r) > 0 {
					s.points = append(s.points, point{float64(n), k.value(r)})
				}
			}
			p.series = append(p.series, s)
		}
	}
	return p
}

// logRange is a decade-aligned range covering every value.
type logRange struct{ lo, hi float64 } // log10

func rangeOf(ps []series, coord func(point) float64) logRange {
	r := logRange{math.Inf(1), math.Inf(-1)}
	for _, s := range ps {
		for _, p := range s.points {
			v := math.Log10(coord(p))
			r.lo, r.hi = math.Min(r.lo, v), math.Max(r.hi, v)
		}
	}
	if math.IsInf(r.lo, 1) {
		return logRange{0, 1}
	}
	r.lo, r.hi = math.Floor(r.lo), math.Ceil(r.hi)
	if r.hi == r.lo {
		r.hi++
	}
	return r
}

func (r logRange) frac(v float64) float64 { return (math.Log10(v) - r.lo) / (r.hi - r.lo) }

func (p panel) draw(b *strings.Builder, x0 float64) {
	xr := rangeOf(p.series, func(q point) float64 { return q.x })
	yr := rangeOf(p.series, func(q point) float64 { return q.y })
	plotW := float64(panelW - marginL - marginR)
	left, top := x0+marginL, float64(marginT)
	px := func(v float64) float64 { return left + xr.frac(v)*plotW }
	py := func(v float64) float64 { return top + (1-yr.frac(v))*plotH }
	fmt.Fprintf(b, `<text x="%.1f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, esc(p.title))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, plotW, plotH)
	p.drawTicks(b, xr, yr, px, py, left, top, plotW)
	for _, s := range p.series {
		if len(s.points) == 0 {
			continue
		}
		var pts []string
		for _, q := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(q.x), py(q.y)))
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(q.x), py(q.y), s.color)
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n",
			strings.Join(pts, " "), s.color, dashAttr(s.dash))
	}
	p.drawLegend(b, left, top+plotH+45)
}

func (p panel) drawTicks(b *strings.Builder, xr, yr logRange, px, py func(float64) float64, left, top, plotW float64) {
	for e := xr.lo; e <= xr.hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) > xr.hi+1e-9 {
				break
			}
			x := px(v)
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, top, x, top+plotH)
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+plotH+15, countLabel(v))
		}
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">services (10 endpoints each)</text>`+"\n", left+plotW/2, top+plotH+32)
	for e := yr.lo; e <= yr.hi; e++ {
		v := math.Pow(10, e)
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-5, y+4, seconds(v))
	}
}

func (p panel) drawLegend(b *strings.Builder, left, top float64) {
	for i, s := range p.series {
		if len(s.points) == 0 {
			continue
		}
		x := left + float64(i%2)*270
		y := top + float64(i/2)*17
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n",
			x, y-4, x+28, y-4, s.color, dashAttr(s.dash))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+34, y, esc(s.name))
	}
}

func dashAttr(d string) string {
	if d == "" {
		return ""
	}
	return fmt.Sprintf(` stroke-dasharray="%s"`, d)
}

func countLabel(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
