package load

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// PoolConfig is a paced load of short requests from a fixed pool of source ports.
type PoolConfig struct {
	Target netip.AddrPort
	// Ports is the source-port pool: every request takes the port that has rested
	// longest, so each port is reused as soon as the others have had their turn.
	Ports   []int
	Workers int
	// Rate is the most requests per second; a slot that no worker is free to take is
	// skipped rather than made up later.
	Rate     float64
	Timeouts Timeouts
	// Progress, when set, counts requests as they finish.
	Progress *Progress
}

// Progress counts finished and failed requests while a pool runs.
type Progress struct {
	Done, Failed atomic.Int64
}

func (p *Progress) add(r results.Request) {
	if p == nil {
		return
	}
	p.Done.Add(1)
	if !r.OK() {
		p.Failed.Add(1)
	}
}

// schedule hands out request start times at cfg.Rate, skipping slots already past.
type schedule struct {
	mu     sync.Mutex
	origin time.Time
	rate   float64
	next   int
	seq    int
}

func (s *schedule) claim() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Since(s.origin).Seconds()
	slot := max(s.next, int(math.Ceil(now*s.rate)))
	s.next = slot + 1
	s.seq++
	return s.seq, s.origin.Add(time.Duration(float64(slot) / s.rate * float64(time.Second)))
}

// RunPool makes requests until ctx ends and returns them all, ordered by start time;
// times are relative to origin. Each worker stays on a thread in the client namespace ns.
func RunPool(ctx context.Context, ns netns.NsHandle, cfg PoolConfig, origin time.Time) []results.Request {
	ports := make(chan int, len(cfg.Ports))
	for _, p := range cfg.Ports {
		ports <- p
	}
	sched := &schedule{origin: origin, rate: cfg.Rate, next: int(math.Ceil(time.Since(origin).Seconds() * cfg.Rate))}
	out := make(chan []results.Request, cfg.Workers)
	for range cfg.Workers {
		go func() {
			var recs []results.Request
			_ = guest.InNetns(ns, func() error {
				recs = work(ctx, cfg, sched, ports)
				return nil
			})
			out <- recs
		}()
	}
	var all []results.Request
	for range cfg.Workers {
		all = append(all, <-out...)
	}
	results.SortRequests(all)
	return all
}

func work(ctx context.Context, cfg PoolConfig, sched *schedule, ports chan int) []results.Request {
	var recs []results.Request
	for {
		seq, at := sched.claim()
		select {
		case <-ctx.Done():
			return recs
		case <-time.After(time.Until(at)):
		}
		r := request(cfg, ports, sched.origin)
		r.Seq = seq
		cfg.Progress.add(r)
		recs = append(recs, r)
	}
}

// busyPause is how long a request waits when every port is still closing.
const busyPause = 20 * time.Millisecond

// request makes one request from the port that has rested longest. A port whose last
// connection is still closing cannot be bound to the same destination again (connect
// fails with EADDRNOTAVAIL before any packet is sent): like a client's port allocator,
// the request then moves on to the next port, pausing after a round of busy ports, until
// its connect timeout; it counts such ports in BusyPorts.
func request(cfg PoolConfig, ports chan int, origin time.Time) results.Request {
	start := time.Now()
	var r results.Request
	for try := 0; ; try++ {
		port := <-ports
		pod, kind, err := Get(cfg.Target, port, cfg.Timeouts)
		ports <- port
		r = results.Request{Start: start.Sub(origin), Dur: time.Since(start), Port: port, Pod: pod, Kind: kind, BusyPorts: try}
		if err != nil {
			r.Err = err.Error()
		}
		if kind != results.KindPortBusy || time.Since(start) > cfg.Timeouts.Connect {
			return r
		}
		if (try+1)%len(cfg.Ports) == 0 {
			time.Sleep(busyPause)
		}
	}
}
