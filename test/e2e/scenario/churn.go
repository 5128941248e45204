package scenario

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// The churn keeps the service between churnMinPods and churnMaxPods pods, all ready
// between steps, so it always has a ready endpoint.
const (
	churnStartPods = 3
	churnMinPods   = 2
	churnMaxPods   = 6
	// churnAddresses is how many pod addresses the churn cycles through (10.244.0.10
	// onwards), the longest free one first.
	churnAddresses = 240
	// memorySlack is what "memory flat" allows on top of 1.5 times the start figure.
	memorySlack = 16 << 20
)

// Churn is issue 7's churn: for Tune.ChurnDuration, random endpoint changes of a
// ClusterIP service (a new pod ready, then an old one terminating, removed and killed,
// as in a rolling update; sometimes a scale up or down) while a client makes short
// requests from a small pool of reused source ports. Every request goes to a service
// with ready endpoints, so none may fail; no real server of a removed pod may be left;
// the proxier's memory must stay flat.
func Churn(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioChurn, proxy, 0, (*world).churn)
}

// churnState is the churned service and what has been done to it. The counters are
// read by the progress printer.
type churnState struct {
	rs  *rollingService
	rng *rand.Rand
	// free holds the pod addresses not in use, the longest free first, so that an
	// address comes back only long after its pod is gone.
	free    []netip.Addr
	nextPod int
	// pods is the current number of pods; the others count the steps of each kind.
	pods, replaced, scaledUp, scaledDown atomic.Int64
	// removed are the addresses of every pod taken out of the service.
	removed []netip.Addr
}

// memoryFigures are the proxier's memory at the start, at the end, and the highest seen.
type memoryFigures struct {
	start, end, peak guest.Memory
}

func (w *world) churn(ctx context.Context) error {
	tune := w.env.Tune
	seed := tune.ChurnSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	w.env.Printf("churn %s: seed %d, duration %s", w.run.Proxy, seed, tune.ChurnDuration)
	w.run.Note(fmt.Sprintf("seed %d (e2e-driver -churn-seed %d, or E2E_CHURN_SEED, repeats the choices)", seed, seed))
	cs, err := w.startChurn(ctx, seed)
	if err != nil {
		return err
	}
	pl, loadCtx := w.startPoolLoad(ctx, cs.rs.vip)
	defer pl.cancel()
	time.Sleep(tune.Warmup)
	var mem memoryFigures
	if mem.start, err = w.proxier.Memory(ctx); err != nil {
		return err
	}
	mem.peak = mem.start
	w.event("proxier memory at the start: "+mem.start.String(), 0)
	stepErr := w.churnFor(loadCtx, cs, pl.progress, &mem)
	var memErr error
	if mem.end, memErr = w.proxier.Memory(ctx); memErr == nil {
		w.event("proxier memory at the end: "+mem.end.String(), 0)
	}
	if stepErr == nil {
		time.Sleep(tune.Tail)
	}
	w.stopPoolLoad(pl)
	w.summarizeDeletions(cs.rs)
	if stepErr != nil {
		return stepErr
	}
	if memErr != nil {
		return memErr
	}
	return w.checkChurn(cs, mem)
}

// poolLoad is the rolling update's client load (short requests from a small pool of
// reused source ports) running in the background.
type poolLoad struct {
	progress *load.Progress
	cancel   context.CancelFunc
	done     chan []results.Request
}

// startPoolLoad starts the load toward vip and makes now the run's origin; the returned
// context ends with the load.
func (w *world) startPoolLoad(ctx context.Context, vip netip.AddrPort) (*poolLoad, context.Context) {
	tune := w.env.Tune
	pl := &poolLoad{progress: &load.Progress{}, done: make(chan []results.Request, 1)}
	cfg := load.PoolConfig{Target: vip, Ports: sourcePorts(tune.Ports), Workers: tune.Workers, Rate: tune.Rate, Timeouts: tune.Timeouts, Progress: pl.progress}
	loadCtx, cancel := context.WithCancel(ctx)
	pl.cancel = cancel
	w.origin = time.Now()
	go func() { pl.done <- load.RunPool(loadCtx, w.node.Client.NS, cfg, w.origin) }()
	w.event(fmt.Sprintf("load started: %.0f req/s max, %d workers, source ports %d-%d", tune.Rate, tune.Workers, firstSourcePort, firstSourcePort+tune.Ports-1), 0)
	return pl, loadCtx
}

// stopPoolLoad stops the load and records its requests.
func (w *world) stopPoolLoad(pl *poolLoad) {
	pl.cancel()
	w.run.Requests = <-pl.done
	w.event(fmt.Sprintf("load stopped: %d requests, %d failed", pl.progress.Done.Load(), pl.progress.Failed.Load()), 0)
}

// startChurn creates the service with its first pods and the churn's state.
func (w *world) startChurn(ctx context.Context, seed int64) (*churnState, error) {
	rs, err := w.startRollingService(ctx, churnStartPods)
	if err != nil {
		return nil, err
	}
	cs := &churnState{rs: rs, rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed))), nextPod: churnStartPods + 1}
	for i := churnStartPods; i < churnAddresses; i++ {
		cs.free = append(cs.free, podIP(i))
	}
	cs.pods.Store(int64(len(rs.eps)))
	return cs, nil
}

// churnFor runs random steps until the churn's duration has passed, printing progress.
func (w *world) churnFor(ctx context.Context, cs *churnState, progress *load.Progress, mem *memoryFigures) error {
	d := w.env.Tune.ChurnDuration
	start := time.Now()
	stop := w.printChurnProgress(ctx, cs, progress, mem, start)
	defer stop()
	for time.Since(start) < d {
		if err := w.churnStep(ctx, cs); err != nil {
			return err
		}
	}
	return nil
}

// churnStep makes one random change: mostly a replacement (a new pod, then a random old
// one retired), sometimes a scale up or down within the pod limits.
func (w *world) churnStep(ctx context.Context, cs *churnState) error {
	n := len(cs.rs.eps)
	switch roll := cs.rng.IntN(10); {
	case roll < 2 && n < churnMaxPods:
		cs.scaledUp.Add(1)
		return w.churnAdd(ctx, cs)
	case roll < 4 && n > churnMinPods:
		cs.scaledDown.Add(1)
		return w.churnRetire(ctx, cs, cs.rng.IntN(n))
	}
	if err := w.churnAdd(ctx, cs); err != nil {
		return err
	}
	time.Sleep(cs.jitter(w.env.Tune.Settle))
	cs.replaced.Add(1)
	return w.churnRetire(ctx, cs, cs.rng.IntN(n)) // one of the old ones, not the new
}

// jitter is a random duration between d/2 and 3d/2.
func (cs *churnState) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(cs.rng.Int64N(int64(d)+1))
}

// churnAdd starts a pod on the longest-free address and waits until IPVS serves it.
func (w *world) churnAdd(ctx context.Context, cs *churnState) error {
	if len(cs.free) == 0 {
		return fmt.Errorf("churn: no free pod address left")
	}
	ip := cs.free[0]
	cs.free = cs.free[1:]
	name := fmt.Sprintf("web-%d", cs.nextPod)
	cs.nextPod++
	p, err := w.startPod(ctx, name, ip)
	if err != nil {
		return err
	}
	cs.rs.eps = append(cs.rs.eps, w.endpoint(p, cluster.Ready))
	cs.pods.Store(int64(len(cs.rs.eps)))
	return w.writeAndWait(ctx, cs.rs, "pod "+name+" ready", hasWeight(ipvs.TCP, cs.rs.vip, netip.AddrPortFrom(ip, guest.HTTPPort), 1))
}

// churnRetire takes endpoint i out in rolling.go's replaceOne order: terminating (waits
// until IPVS sends it nothing new), removed from the slice, then its pod killed.
func (w *world) churnRetire(ctx context.Context, cs *churnState, i int) error {
	tune := w.env.Tune
	old := cs.rs.eps[i]
	cs.rs.eps[i].State = cluster.Terminating
	if err := w.writeAndWait(ctx, cs.rs, "pod "+old.Pod+" terminating", notServing(ipvs.TCP, cs.rs.vip, netip.AddrPortFrom(old.IP, guest.HTTPPort))); err != nil {
		return err
	}
	time.Sleep(cs.jitter(tune.Terminating))
	cs.pods.Store(int64(len(cs.rs.eps) - 1))
	if err := w.removeEndpoint(ctx, cs.rs, i); err != nil {
		return err
	}
	cs.removed = append(cs.removed, old.IP)
	time.Sleep(cs.jitter(tune.AfterRemove))
	if err := w.killPod(w.pods[old.Pod]); err != nil {
		return err
	}
	cs.free = append(cs.free, old.IP)
	return nil
}

// progressEvery is how often the churn prints its progress: every 15 s, at most about
// 40 lines for a long run.
func progressEvery(d time.Duration) time.Duration { return max(15*time.Second, d/40) }

// printChurnProgress prints the churn's figures periodically (sampling the proxier's
// memory into mem.peak) until the returned stop is called.
func (w *world) printChurnProgress(ctx context.Context, cs *churnState, progress *load.Progress, mem *memoryFigures, start time.Time) (stop func()) {
	d := w.env.Tune.ChurnDuration
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(progressEvery(d))
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			m, err := w.proxier.Memory(ctx)
			memText := m.String()
			if err != nil {
				memText = err.Error()
			}
			mem.peak.RSS, mem.peak.HeapInuse = max(mem.peak.RSS, m.RSS), max(mem.peak.HeapInuse, m.HeapInuse)
			w.env.Printf("churn: %d s of %d s, requests %d, failed %d, pods replaced %d, scaled up %d, down %d, pods now %d; proxier %s",
				int(time.Since(start).Seconds()), int(d.Seconds()), progress.Done.Load(), progress.Failed.Load(),
				cs.replaced.Load(), cs.scaledUp.Load(), cs.scaledDown.Load(), cs.pods.Load(), memText)
		}
	}()
	return func() { close(quit); <-finished }
}

// summarizeDeletions notes how long removed endpoints' real servers took to leave IPVS
// (one line: a long churn removes hundreds).
func (w *world) summarizeDeletions(rs *rollingService) {
	var took []time.Duration
	var left []string
	for _, c := range rs.deletions {
		d := <-c
		if d.goneAt == 0 {
			left = append(left, fmt.Sprintf("%s (removed at t=%.2fs)", d.pod, d.removedAt.Seconds()))
			continue
		}
		took = append(took, d.goneAt-d.removedAt)
	}
	w.run.Note(fmt.Sprintf("real servers of %d removed pods: deleted after median %s, max %s; still in IPVS when the load stopped: %d%s",
		len(rs.deletions), results.Median(took).Round(time.Millisecond), results.Max(took).Round(time.Millisecond), len(left), listed(left)))
}

// checkChurn asserts the churn's expectations and records its figures.
func (w *world) checkChurn(cs *churnState, mem memoryFigures) error {
	s := results.Summarize(w.run.Requests)
	w.run.Note(fmt.Sprintf("pods: %d started, %d replacements, %d scale-ups, %d scale-downs, %d at the end (%s)",
		cs.nextPod-1, cs.replaced.Load(), cs.scaledUp.Load(), cs.scaledDown.Load(), len(cs.rs.eps), strings.Join(podNames(cs.rs.eps), " ")))
	if w.run.Proxy == OursGateOn || w.env.Profile == "stock" {
		w.run.Check("no failed requests (the service always had ready endpoints)", s.Failed == 0, failureDetail(s))
	} else {
		w.run.Note("failed requests: " + failureDetail(s))
	}
	vss, err := w.table.List()
	if err != nil {
		return err
	}
	stale := removedLeft(vss, cs)
	w.run.Note(fmt.Sprintf("weight-0 real servers at the end: %d%s", len(weightZeroLeft(vss)), listed(weightZeroLeft(vss))))
	w.run.Check("no real server of a removed pod left; the current pods served at weight 1",
		len(stale) == 0 && servesAll(ipvs.TCP, cs.rs.vip, rss(cs.rs.eps, guest.HTTPPort)...)(vss),
		fmt.Sprintf("left: %s\n%s", strings.Join(stale, "; "), ipvs.FormatVirtualServers(vss)))
	w.checkMemory(mem)
	return nil
}

// removedLeft lists the service's real servers whose address belongs to a removed pod
// and to no current one (an address may have been reused by a later pod).
func removedLeft(vss []ipvs.VirtualServer, cs *churnState) []string {
	vs, ok := virtualServer(vss, ipvs.TCP, cs.rs.vip)
	if !ok {
		return nil
	}
	current := map[netip.Addr]bool{}
	for _, e := range cs.rs.eps {
		current[e.IP] = true
	}
	var out []string
	for _, d := range vs.Destinations {
		if !current[d.Address] && slices.Contains(cs.removed, d.Address) {
			out = append(out, fmt.Sprintf("%s weight %d", d.DestinationKey, d.Weight))
		}
	}
	return out
}

// checkMemory asserts the proxier's memory stayed flat: at the end at most 1.5 times
// the start plus memorySlack (GC timing moves the heap by that much).
func (w *world) checkMemory(mem memoryFigures) {
	w.run.Note(fmt.Sprintf("proxier memory: start %s; end %s; peak sampled %s", mem.start, mem.end, mem.peak))
	flat := func(what string, start, end int64) {
		limit := int64(float64(start)*1.5) + memorySlack
		w.run.Check(fmt.Sprintf("memory flat: %s at the end <= 1.5 x start + %s", what, guest.MiB(memorySlack)), end <= limit,
			fmt.Sprintf("%s: start %s, end %s, limit %s", what, guest.MiB(start), guest.MiB(end), guest.MiB(limit)))
	}
	flat("RSS", mem.start.RSS, mem.end.RSS)
	if mem.start.HeapInuse >= 0 && mem.end.HeapInuse >= 0 {
		flat("Go heap in use", mem.start.HeapInuse, mem.end.HeapInuse)
	}
}

// listed is ": a; b" for a non-empty list, "" otherwise.
func listed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return ": " + strings.Join(items, "; ")
}
