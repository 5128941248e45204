package kernel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// Metric names (upstream's; ours exposes the same).
const (
	syncsMetric      = "kubeproxy_sync_proxy_rules_duration_seconds"
	lastSyncMetric   = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	lastQueuedMetric = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
	// family is the one the benchmark's Services are in.
	family = "IPv4"
)

// Options say what one measurement does.
type Options struct {
	Side       string
	Binary     string
	Kubeconfig string
	Services   int
	SyncPeriod time.Duration
	// Updates is how many EndpointSlice updates to time, within UpdateBudget.
	Updates      int
	UpdateBudget time.Duration
	Idle         time.Duration
	// ProgramTimeout bounds the wait for the whole cluster to be programmed.
	ProgramTimeout time.Duration
	LogPath        string
	// Verbosity is the proxier's --v.
	Verbosity int
	// Profile, when set, enables the proxier's profiling and receives a
	// CPU profile of the idle window.
	Profile func([]byte)
	// StartProfile, when set, receives a CPU profile of the proxier's
	// first StartProfileFor (start-up: informers' lists, first syncs).
	StartProfile    func([]byte)
	StartProfileFor time.Duration
	// Progress gets a line per step.
	Progress func(format string, args ...any)
}

// run is one measurement in progress.
type run struct {
	o      Options
	client kubernetes.Interface
	rules  rules
	p      *proxier
	res    results.Kernel
}

// Run starts the proxier on a cluster the loader already put into the API
// server and measures it; it restores the EndpointSlices it changed.
func Run(ctx context.Context, o Options) (results.Kernel, error) {
	r := &run{o: o, res: results.Kernel{Side: o.Side, Services: o.Services}}
	var err error
	if r.client, err = newClient(o.Kubeconfig); err != nil {
		return r.res, err
	}
	if r.rules, err = newRules(o.Side); err != nil {
		return r.res, err
	}
	started := time.Now()
	profiling := o.Profile != nil || o.StartProfile != nil
	if r.p, err = startProxier(o.Binary, proxierConfig(o.Side, o.Kubeconfig, o.SyncPeriod, profiling), o.LogPath, o.Verbosity); err != nil {
		return r.res, err
	}
	defer r.p.stop()
	startProfiled := r.profileStart(ctx)
	if err := r.waitProgrammed(ctx, started); err != nil {
		return r.res, err
	}
	settled, err := r.waitSettled(ctx)
	if err != nil {
		return r.res, err
	}
	<-startProfiled // one CPU profile at a time
	idle, err := r.idle(ctx)
	if err != nil {
		return r.res, err
	}
	changed, err := r.updates(ctx)
	defer r.restore(ctx, changed)
	if err != nil {
		return r.res, err
	}
	return r.res, r.finish(ctx, settled, idle)
}

// waitSettled waits until every family's proxier has finished its first
// sync and has no sync queued (the initial lists' events are absorbed).
func (r *run) waitSettled(ctx context.Context) (snapshot, error) {
	r.o.Progress("%s: waiting for the first syncs to end and the queue to drain", r.o.Side)
	deadline := time.Now().Add(r.o.ProgramTimeout)
	for first := true; ; first = false {
		s, err := scrape(ctx)
		if err == nil && settled(s) {
			r.res.SettleSeconds = settleSeconds(s, r.p.started, first)
			r.o.Progress("%s: settled after %.1f s", r.o.Side, r.res.SettleSeconds)
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: not settled after %s (last error %v)", r.o.Side, r.o.ProgramTimeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// settleSeconds is from start to settled. Settled at the first look (the
// kernel check before it took long: upstream-nftables' whole-table
// listing), the last sync's own timestamp says when; otherwise now does,
// within the 500 ms poll.
func settleSeconds(s snapshot, start time.Time, first bool) float64 {
	now := time.Since(start).Seconds()
	if !first {
		return now
	}
	last := 0.0
	for _, f := range s.families() {
		last = max(last, s.gauge(lastSyncMetric, f))
	}
	at := last - float64(start.UnixNano())/1e9
	if at <= 0 || at > now {
		return now
	}
	return at
}

func settled(s snapshot) bool {
	fams := s.families()
	if len(fams) == 0 {
		return false
	}
	for _, f := range fams {
		if s.histogram(syncsMetric, f).count == 0 || s.gauge(lastSyncMetric, f) < s.gauge(lastQueuedMetric, f) {
			return false
		}
	}
	return true
}

// waitProgrammed polls the kernel until every Service has its 10 endpoints
// (IPVS real servers, or DNAT targets in upstream's nftables table).
func (r *run) waitProgrammed(ctx context.Context, started time.Time) error {
	r.o.Progress("%s: waiting for %d services with %d endpoints each in the kernel", r.o.Side, r.o.Services, cluster.EndpointsPerService)
	deadline := started.Add(r.o.ProgramTimeout)
	for {
		n, at, err := r.rules.programmed(ctx, r.o.Services)
		if err == nil && n == r.o.Services {
			r.res.ProgramSeconds = at.Sub(started).Seconds()
			r.o.Progress("%s: programmed after %.1f s", r.o.Side, r.res.ProgramSeconds)
			return nil
		}
		if exited, werr := r.p.exited(); exited {
			return fmt.Errorf("%s exited before programming the cluster: %v (log %s)", r.o.Side, werr, r.o.LogPath)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %d of %d services programmed after %s (last error %v)", r.o.Side, n, r.o.Services, r.o.ProgramTimeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// idle measures the CPU the proxier uses while nothing changes, and
// returns the metrics at its end.
func (r *run) idle(ctx context.Context) (snapshot, error) {
	r.o.Progress("%s: idle for %s", r.o.Side, r.o.Idle)
	m0, err := scrape(ctx)
	if err != nil {
		return nil, err
	}
	own0, children0, err := r.p.cpuSeconds()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r.sleepOrProfile(ctx, r.o.Idle)
	own1, children1, err := r.p.cpuSeconds()
	if err != nil {
		return nil, err
	}
	m1, err := scrape(ctx)
	if err != nil {
		return nil, err
	}
	r.res.IdleSeconds = time.Since(start).Seconds()
	r.res.IdleCPUSeconds = own1 - own0
	r.res.IdleChildCPUSeconds = children1 - children0
	for _, f := range m1.families() {
		r.res.IdleSyncs += m1.histogram(syncsMetric, f).minus(m0.histogram(syncsMetric, f)).count
	}
	d := m1.histogram(syncsMetric, family).minus(m0.histogram(syncsMetric, family))
	r.res.IdleFullSyncs, r.res.FullSyncSeconds = d.count, d.mean()
	return m1, nil
}

// profileStart takes the start-up CPU profile in the background, once the
// proxier serves it; the channel closes when it is done (at once if not
// asked for).
func (r *run) profileStart(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if r.o.StartProfile == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		var err error
		for range 100 { // the metrics server comes up within a few seconds
			var prof []byte
			if prof, err = cpuProfile(ctx, r.o.StartProfileFor); err == nil {
				r.o.StartProfile(prof)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		r.o.Progress("%s: start-up profile: %v", r.o.Side, err)
	}()
	return done
}

// sleepOrProfile waits d, taking a CPU profile meanwhile when asked to.
func (r *run) sleepOrProfile(ctx context.Context, d time.Duration) {
	if r.o.Profile == nil {
		time.Sleep(d)
		return
	}
	start := time.Now()
	prof, err := cpuProfile(ctx, d)
	if err != nil {
		r.o.Progress("%s: %v", r.o.Side, err)
	} else {
		r.o.Profile(prof)
	}
	time.Sleep(time.Until(start.Add(d)))
}

// updates times EndpointSlice updates that remove one endpoint each, from
// just before the API call to the real server's disappearance, and
// returns the Services it changed.
func (r *run) updates(ctx context.Context) ([]int, error) {
	var changed []int
	var latencies []float64
	start := time.Now()
	for k := range r.o.Updates {
		if k > 0 && time.Since(start) > r.o.UpdateBudget {
			r.note("updates capped at %d by the %s budget", k, r.o.UpdateBudget)
			break
		}
		i := (k * 7919) % r.o.Services
		lat, err := r.removeOne(ctx, i)
		changed = append(changed, i)
		if err != nil {
			return changed, err
		}
		latencies = append(latencies, lat.Seconds())
		if k%10 == 9 {
			r.o.Progress("%s: %d updates, last %.0f ms", r.o.Side, k+1, lat.Seconds()*1e3)
		}
		time.Sleep(200*time.Millisecond + rand.N(300*time.Millisecond)) // not in step with the sync period
	}
	slices.Sort(latencies)
	r.res.Updates = len(latencies)
	r.res.LatencyP50 = quantile(latencies, 0.50)
	r.res.LatencyP99 = quantile(latencies, 0.99)
	r.res.LatencyMax = latencies[len(latencies)-1]
	return changed, nil
}

// removeOne drops Service i's first endpoint and waits for it to leave
// the kernel.
func (r *run) removeOne(ctx context.Context, i int) (time.Duration, error) {
	gone := cluster.Endpoint(i, 0)
	start, err := setEndpoints(ctx, r.client, i, cluster.InitialEndpoints(i)[1:])
	if err != nil {
		return 0, err
	}
	deadline := start.Add(5 * time.Minute)
	for {
		there, err := r.rules.has(ctx, i, gone)
		if err != nil {
			return 0, err
		}
		if !there {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("endpoint %s of service %s still in the kernel 5 minutes after the update", gone, cluster.ServiceName(i))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// finish fills in the full sync time where the idle window had no sync
// (upstream's IPVS syncs are all full: those after the updates count too;
// ours are partial then), the nftables side's from its start-up, the peak
// RSS and what reading the kernel cost.
func (r *run) finish(ctx context.Context, settled, idle snapshot) error {
	end, err := scrape(ctx)
	if err != nil {
		return err
	}
	if r.o.Side == results.UpstreamNFTables {
		// Its periodic syncs are partial (a full one every hour) and it
		// syncs only on changes: its one full sync is the first.
		h := settled.histogram(syncsMetric, family)
		r.res.FullSyncSeconds = h.mean()
		r.note("nftables mode syncs fully only at start and hourly: full sync is the mean of its %d start-up syncs", h.count)
	}
	if c := r.rules.cost(); c != "" {
		r.note("%s", c)
	}
	if r.res.FullSyncSeconds == 0 && r.o.Side == results.Upstream {
		d := end.histogram(syncsMetric, family).minus(settled.histogram(syncsMetric, family))
		r.res.FullSyncSeconds = d.mean()
		r.note("no sync ended in the idle window; full sync: mean of the %d syncs after it", d.count)
	}
	if r.res.FullSyncSeconds == 0 {
		h := settled.histogram(syncsMetric, family)
		r.res.FullSyncSeconds = h.mean()
		r.note("no sync ended in the idle window; full sync: mean of the %d startup syncs", h.count)
	}
	r.res.PeakRSSBytes, err = r.p.peakRSS()
	return err
}

// restore puts the changed Services' endpoints back for the next proxier.
func (r *run) restore(ctx context.Context, changed []int) {
	for _, i := range changed {
		if _, err := setEndpoints(ctx, r.client, i, cluster.InitialEndpoints(i)); err != nil {
			fmt.Fprintf(os.Stderr, "restore endpoints of service %d: %v\n", i, err)
		}
	}
}

// note adds to the result's note.
func (r *run) note(format string, args ...any) {
	if r.res.Note != "" {
		r.res.Note += "; "
	}
	r.res.Note += fmt.Sprintf(format, args...)
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
