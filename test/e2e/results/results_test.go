package results

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
	"time"
)

func req(seq int, startMs, durMs, port int, kind string) Request {
	return Request{Seq: seq, Start: time.Duration(startMs) * time.Millisecond, Dur: time.Duration(durMs) * time.Millisecond, Port: port, Kind: kind}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name        string
		reqs        []Request
		wantFailed  int
		wantWindows int
		wantLongest time.Duration
		wantOutage  time.Duration
		wantSlow    int
	}{
		{name: "no requests"},
		{
			// Slow means slower than 1 s: exactly 1 s is not, and failures are not.
			name:     "all ok, one slow",
			reqs:     []Request{req(1, 0, 10, 1, KindOK), req(2, 100, 1200, 2, KindOK), req(3, 200, 1000, 3, KindOK)},
			wantSlow: 1,
		},
		{
			// Failures 0.5 s apart join one window despite a success between them.
			name: "one window across a success",
			reqs: []Request{
				req(1, 1000, 100, 1, KindConnectTimeout), req(2, 1200, 10, 2, KindOK),
				req(3, 1600, 3000, 1, KindUnreachable), req(4, 9000, 10, 1, KindOK),
			},
			wantFailed: 2, wantWindows: 1, wantLongest: 3600 * time.Millisecond, wantOutage: 3600 * time.Millisecond,
		},
		{
			name: "two windows, streaks on two ports",
			reqs: []Request{
				req(1, 0, 100, 1, KindReset), req(2, 5000, 100, 2, KindReset),
				req(3, 5200, 300, 2, KindReset), req(4, 5600, 10, 2, KindOK),
			},
			wantFailed: 3, wantWindows: 2, wantLongest: 500 * time.Millisecond, wantOutage: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.reqs)
			if s.Requests != len(tt.reqs) || s.Failed != tt.wantFailed || len(s.Windows) != tt.wantWindows ||
				s.Longest.Length() != tt.wantLongest || s.PortOutage != tt.wantOutage || s.SlowOK != tt.wantSlow {
				t.Errorf("Summarize = %+v (longest %s), want failed %d windows %d longest %s outage %s slow %d",
					s, s.Longest.Length(), tt.wantFailed, tt.wantWindows, tt.wantLongest, tt.wantOutage, tt.wantSlow)
			}
		})
	}
}

// A rolling-update run with a dropped SYN: the table row, the run's text and the
// figures of results.json all count the request slower than 1 s, apart from failures.
func TestSlowRequestsReported(t *testing.T) {
	r := &Run{Scenario: ScenarioRolling, Proxy: "ours-gate-on", Profile: "legacy"}
	r.Requests = []Request{
		{Seq: 1, Start: 0, Dur: 5 * time.Millisecond, Port: 40000, Pod: "web-1", Kind: KindOK},
		{Seq: 2, Start: time.Second, Dur: 1031 * time.Millisecond, Port: 40000, Pod: "web-4", Kind: KindOK},
		{Seq: 3, Start: 2 * time.Second, Dur: 3 * time.Second, Port: 40001, Kind: KindConnectTimeout},
	}
	row := RollingTable([]*Run{r}).Rows[0]
	if row[3] != "1" || row[7] != "1 (1.031 s)" {
		t.Errorf("table row: failed %q, slow %q; want 1 and \"1 (1.031 s)\"", row[3], row[7])
	}
	text := FormatRun(r)
	for _, want := range []string{"ok but slower than 1 s 1 (slowest 1.031s)", "slow: t=1.000s +1.031s port 40000 (last answered by web-1 at t=0.000s) answered by web-4"} {
		if !strings.Contains(text, want) {
			t.Errorf("run text lacks %q:\n%s", want, text)
		}
	}
	f := Summarize(r.Requests).Figures()
	want := Figures{Requests: 3, Failed: 1, FailedKinds: map[string]int{KindConnectTimeout: 1}, SlowOK: 1, SlowestOK: 1031 * time.Millisecond,
		LongestFailureWindow: 3 * time.Second, PortOutage: 3 * time.Second}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("Figures = %+v, want %+v", f, want)
	}
}

// bigRun is a run large enough to take several data lines.
func bigRun() *Run {
	run := &Run{Scenario: ScenarioRolling, Proxy: "ours-gate-on", Profile: "legacy", Sysctls: "conn_reuse_mode=0"}
	for i := range 3000 {
		run.Requests = append(run.Requests, req(i, i*7, 3+i%5, 40000+i%20, KindOK))
	}
	run.Check("x", true, "")
	return run
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	run := bigRun()
	lines, err := EncodeLines(run, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 2 {
		t.Fatalf("want several data lines, got %d", len(lines))
	}
	log := "boot noise\n" + strings.Join(lines[:1], "\n") + "\nother output\nprefix " + strings.Join(lines[1:], "\n") + "\n"
	runs, err := DecodeLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Key() != run.Key() || len(runs[0].Requests) != 3000 || runs[0].Requests[2999] != run.Requests[2999] {
		t.Fatalf("decoded %d runs, first %+v", len(runs), runs[0].Key())
	}
}

func TestDecodeLogMissingPart(t *testing.T) {
	lines, err := EncodeLines(bigRun(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeLog(strings.NewReader(lines[0] + "\n")); err == nil {
		t.Error("decoding a run with a missing part succeeded")
	}
}

func TestPassedIgnoresInformational(t *testing.T) {
	r := &Run{}
	r.Check("setup", true, "")
	r.Check("expectation", false, "")
	r.MakeInformational("setup")
	if !r.Passed() {
		t.Error("a failed informational check failed the run")
	}
	r.Check("setup", false, "")
	r.MakeInformational("setup")
	if r.Passed() {
		t.Error("a failed kept check did not fail the run")
	}
}

func TestFailuresSVGIsWellFormed(t *testing.T) {
	r := bigRun()
	r.Requests[10].Kind = KindReset
	r.Events = []Event{{At: time.Second, What: "pod web-1 terminating"}, {At: 2 * time.Second, What: "pod web-1 killed, namespace gone after 1ms"}}
	svg := FailuresSVG([]*Run{r, {Scenario: ScenarioUDP}})
	var v struct{}
	if err := xml.Unmarshal([]byte(svg), &v); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	for _, want := range []string{"ours-gate-on", "1 of 3000 failed", `stroke="#ff7f0e"`, `fill="#d62728"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestInflightTableLostNode: the lost-node runs join scenario 3's table, one row
// per case, after the inflight ones.
func TestInflightTableLostNode(t *testing.T) {
	inflight := &Run{Scenario: ScenarioInflight, Proxy: "ours-gate-on", Profile: "stock", Streams: []StreamResult{
		{Case: "cut", Pod: "a", Lost: true, Kind: KindReset, After: 90 * time.Millisecond}, {Case: "cut", Pod: "b"}}}
	lost := &Run{Scenario: ScenarioLostNode, Proxy: "ours-gate-off", Profile: "stock", Streams: []StreamResult{
		{Case: "flap", Pod: "c", Lost: true}, {Case: "flap", Pod: "d"},
		{Case: "node-lost", Pod: "e", Lost: true, Kind: "hung", After: 10 * time.Second}, {Case: "node-lost", Pod: "f"}}}
	var got []string
	for _, row := range InflightTable([]*Run{inflight, lost}).Rows {
		got = append(got, strings.Join(row[1:6], "|"))
	}
	want := []string{
		"ours-gate-on|network cut, then killed|reset|0.090 s|1 of 1 alive",
		"ours-gate-off|node lost: network cut, Node Unknown, endpoint not ready|hung|none within 10.000 s|1 of 1 alive",
		"ours-gate-off|control: endpoint not ready on a Ready Node, pod alive|still running|none|1 of 1 alive",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFailedChecksTextShowsWhy(t *testing.T) {
	reqs := []Request{req(1, 100, 5, 40000, KindOK)}
	for i := range 7 {
		r := req(2+i, 20293+i, 305, 40003, KindReset)
		r.Err = "read: connection reset by peer"
		reqs = append(reqs, r)
	}
	runs := []*Run{
		{Scenario: ScenarioRolling, Profile: "stock", Proxy: "ours-gate-on", Checks: []Check{{Name: "fine", OK: true}}},
		{Scenario: ScenarioOutage, Profile: "stock", Proxy: "ours-gate-on", Requests: reqs, Checks: []Check{
			{Name: "no failed requests", Detail: "7 of 8 failed"},
			{Name: "upstream's expectation", Informational: true, Detail: "not shown"},
		}},
	}
	got := FailedChecksText(runs)
	for _, want := range []string{
		"apiserver-outage/stock/ours-gate-on:\n",
		"  [FAIL] no failed requests: 7 of 8 failed\n",
		"  failed request: t=20.293s +305ms port 40003 reset: read: connection reset by peer\n",
		"  ...\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("FailedChecksText misses %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "rolling") || strings.Contains(got, "not shown") {
		t.Errorf("FailedChecksText shows a passed run or an informational check:\n%s", got)
	}
	if n := strings.Count(got, "failed request:"); n != maxFailedRequestsShown {
		t.Errorf("FailedChecksText lists %d failed requests, want %d", n, maxFailedRequestsShown)
	}
	if FailedChecksText(runs[:1]) != "" {
		t.Error("FailedChecksText of passed runs is not empty")
	}
}
