package results

import (
	"sort"
	"time"
)

// SortRequests orders requests by start time, then sequence.
func SortRequests(reqs []Request) {
	sort.Slice(reqs, func(i, j int) bool {
		if reqs[i].Start != reqs[j].Start {
			return reqs[i].Start < reqs[j].Start
		}
		return reqs[i].Seq < reqs[j].Seq
	})
}

// WindowGap joins failures into one window when the next one starts less than this after
// the previous one ended.
const WindowGap = time.Second

// Window is a stretch of time in which requests kept failing.
type Window struct {
	Start, End time.Duration
	Failed     int
}

// Length is the window's duration, from the first failed request's start to the last
// one's end.
func (w Window) Length() time.Duration { return w.End - w.Start }

// SlowThreshold is the duration beyond which a successful request counts as slow: a
// dropped SYN is retransmitted after 1 s (the initial RTO).
const SlowThreshold = time.Second

// Slow reports whether a successful request took longer than SlowThreshold.
func (r Request) Slow() bool { return r.OK() && r.Dur > SlowThreshold }

// Summary are the figures of a load run.
type Summary struct {
	Requests int
	Failed   int
	// Kinds counts failed requests by kind.
	Kinds   map[string]int
	Windows []Window
	// Longest is the longest failure window (zero without failures).
	Longest Window
	// PortOutage is the longest time one source port kept failing: from the start of
	// the first failed request of a streak to the end of its last one.
	PortOutage time.Duration
	// SlowOK counts successful requests slower than SlowThreshold (a dropped SYN costs
	// the client a retransmission 1 s later); SlowestOK is the longest successful one.
	SlowOK    int
	SlowestOK time.Duration
	// BusyPorts counts source ports skipped because their previous connection was
	// still closing.
	BusyPorts int
}

// Summarize computes a load run's figures.
func Summarize(reqs []Request) Summary {
	sorted := append([]Request(nil), reqs...)
	SortRequests(sorted)
	s := Summary{Requests: len(sorted), Kinds: map[string]int{}}
	for _, r := range sorted {
		s.BusyPorts += r.BusyPorts
		if r.OK() {
			if r.Slow() {
				s.SlowOK++
			}
			s.SlowestOK = max(s.SlowestOK, r.Dur)
			continue
		}
		s.Failed++
		s.Kinds[r.Kind]++
	}
	s.Windows = windows(sorted)
	for _, w := range s.Windows {
		if w.Length() > s.Longest.Length() {
			s.Longest = w
		}
	}
	s.PortOutage = longestPortStreak(sorted)
	return s
}

// Figures are a run's headline numbers as results.json carries them next to the run.
type Figures struct {
	Requests    int            `json:"requests"`
	Failed      int            `json:"failed"`
	FailedKinds map[string]int `json:"failedKinds,omitempty"`
	// SlowOK counts successful requests slower than SlowThreshold.
	SlowOK               int           `json:"slowOK"`
	SlowestOK            time.Duration `json:"slowestOK"`
	LongestFailureWindow time.Duration `json:"longestFailureWindow"`
	PortOutage           time.Duration `json:"portOutage"`
}

// Figures are the summary's headline numbers.
func (s Summary) Figures() Figures {
	f := Figures{Requests: s.Requests, Failed: s.Failed, SlowOK: s.SlowOK, SlowestOK: s.SlowestOK,
		LongestFailureWindow: s.Longest.Length(), PortOutage: s.PortOutage}
	if len(s.Kinds) > 0 {
		f.FailedKinds = s.Kinds
	}
	return f
}

func windows(sorted []Request) []Window {
	var out []Window
	for _, r := range sorted {
		if r.OK() {
			continue
		}
		if n := len(out); n > 0 && r.Start-out[n-1].End < WindowGap {
			out[n-1].End = max(out[n-1].End, r.End())
			out[n-1].Failed++
			continue
		}
		out = append(out, Window{Start: r.Start, End: r.End(), Failed: 1})
	}
	return out
}

func longestPortStreak(sorted []Request) time.Duration {
	streakStart := map[int]time.Duration{}
	var longest time.Duration
	for _, r := range sorted {
		if r.OK() {
			delete(streakStart, r.Port)
			continue
		}
		start, ok := streakStart[r.Port]
		if !ok {
			start = r.Start
			streakStart[r.Port] = start
		}
		longest = max(longest, r.End()-start)
	}
	return longest
}

// Latencies are the sync latencies measured in a run, in event order.
func Latencies(events []Event) []time.Duration {
	var out []time.Duration
	for _, e := range events {
		if e.SyncLatency > 0 {
			out = append(out, e.SyncLatency)
		}
	}
	return out
}

// Median and Max of durations (zero for none).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// Max is the largest duration (zero for none).
func Max(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
