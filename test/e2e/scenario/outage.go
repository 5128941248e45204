package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// The health server of the proxier under test (healthzBindAddress 0.0.0.0:10256).
const (
	healthzURL = "http://127.0.0.1:10256"
	healthPoll = 250 * time.Millisecond
)

// Client-go's reflector backoff (k8s.io/client-go/tools/cache/reflector.go): after a
// refused connection a reflector retries its watch after 800 ms, doubling up to 30 s,
// each wait stretched by a random factor in [1, 2).
const (
	reflectorBackoffInit = 800 * time.Millisecond
	reflectorBackoffCap  = 30 * time.Second
	// catchUpSlack is what the catch-up bound allows on top of the reflector's pending
	// retry: the watch's events and one sync.
	catchUpSlack = 3 * time.Second
)

// Outage is issue 7's API server fault: while a client keeps requesting a ClusterIP,
// the proxier loses the API server for Tune.Outage (the node's relay to it closes its
// connections and refuses new ones: what the proxier sees when the API server stops).
// Meanwhile the driver, through its own connection, writes a change (a new pod ready,
// an old one terminating). Expected: IPVS keeps serving the rules it had, so no request
// fails; the proxier keeps its periodic syncs; /healthz and /livez stay healthy (see
// healthExpectation); once the API server is back the change reaches IPVS within the
// reflector's pending retry plus catchUpSlack.
func Outage(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioOutage, proxy, env.Tune.OutageSyncPeriod, (*world).outage)
}

// healthExpectation says why the proxier must stay healthy through the outage.
const healthExpectation = "upstream's ProxyHealthServer (pkg/proxy/healthcheck/proxy_health.go, used by ours) " +
	"reports unhealthy only when an update queued by an informer event (QueuedUpdate) is not synced (Updated) " +
	"within healthTimeout = 2 x syncPeriod; an outage brings no events, periodic syncs keep calling Updated, " +
	"and the change that arrives after it is synced at once; /healthz also needs the Node " +
	"(from the informer's cache) not deleted nor tainted ToBeDeletedByClusterAutoscaler"

// outageRecord is what happened while the API server was away from the proxier.
type outageRecord struct {
	start, end time.Time
	// syncs counts the proxier's syncs during the outage.
	syncs int
	// reads counts IPVS reads during the outage; changed is the first one that did not
	// show the rules from before it ("" when all did).
	reads   int
	changed string
}

func (o outageRecord) length() time.Duration { return o.end.Sub(o.start) }

// healthLog is what the health server answered while it was polled.
type healthLog struct {
	polls, failed int
	first         string
}

func (w *world) outage(ctx context.Context) error {
	tune := w.env.Tune
	rs, err := w.startRollingService(ctx, 3)
	if err != nil {
		return err
	}
	pl, loadCtx := w.startPoolLoad(ctx, rs.vip)
	defer pl.cancel()
	time.Sleep(tune.Warmup)
	stopHealth := w.watchHealth(loadCtx)
	rec, err := w.cutAPIServer(loadCtx, rs)
	if err != nil {
		stopHealth()
		return err
	}
	if err := w.catchUp(loadCtx, rs, rec); err != nil {
		stopHealth()
		return err
	}
	if err := w.removeTerminating(loadCtx, rs); err != nil {
		stopHealth()
		return err
	}
	time.Sleep(tune.Tail)
	health := stopHealth()
	w.stopPoolLoad(pl)
	return w.checkOutage(rs, rec, health)
}

// cutAPIServer cuts the proxier off the API server, writes the change through the
// driver's own connection, watches IPVS for the outage's length, and restores the relay.
func (w *world) cutAPIServer(ctx context.Context, rs *rollingService) (outageRecord, error) {
	var rec outageRecord
	before := rss(rs.eps, guest.HTTPPort)
	s0, err := w.proxier.Syncs(ctx)
	if err != nil {
		return rec, err
	}
	if err := w.fwd.Cut(); err != nil {
		return rec, err
	}
	rec.start = time.Now()
	w.event(fmt.Sprintf("API server cut off from the proxier for %s (its connections closed, new ones refused)", w.env.Tune.Outage), 0)
	if err := w.changeDuringOutage(ctx, rs); err != nil {
		return rec, err
	}
	rec.reads, rec.changed = w.holdRules(ctx, rs.vip, before, rec.start.Add(w.env.Tune.Outage))
	s1, err := w.proxier.Syncs(ctx)
	if err != nil {
		return rec, err
	}
	if err := w.fwd.Restore(); err != nil {
		return rec, err
	}
	rec.end = time.Now()
	rec.syncs = s1.Syncs - s0.Syncs
	w.event(fmt.Sprintf("API server reachable again after %s; the proxier synced %d times meanwhile", rec.length().Round(time.Millisecond), rec.syncs), 0)
	return rec, nil
}

// changeDuringOutage starts pod web-4 and writes it ready and web-1 terminating.
func (w *world) changeDuringOutage(ctx context.Context, rs *rollingService) error {
	eps, err := w.readyWeb4TerminateFirst(ctx, rs.slice, rs.eps)
	if err != nil {
		return err
	}
	rs.eps = eps
	w.event("during the outage: web-4 ready and web-1 terminating written to the API server", 0)
	return nil
}

// holdRules reads IPVS until the deadline and reports how many reads it made and the
// first one that did not show exactly the real servers before (formatted).
func (w *world) holdRules(ctx context.Context, vip netip.AddrPort, before []netip.AddrPort, deadline time.Time) (int, string) {
	reads, changed := 0, ""
	same := servesAll(ipvs.TCP, vip, before...)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		vss, err := w.table.List()
		reads++
		if changed == "" && (err != nil || !same(vss)) {
			changed = fmt.Sprintf("t=%.2fs (error %v):\n%s", w.since().Seconds(), err, ipvs.FormatVirtualServers(vss))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return reads, changed
}

// catchUp waits until the change written during the outage is in IPVS and checks it came
// within the bound.
func (w *world) catchUp(ctx context.Context, rs *rollingService, rec outageRecord) error {
	added := netip.AddrPortFrom(rs.eps[len(rs.eps)-1].IP, guest.HTTPPort)
	terminating := netip.AddrPortFrom(rs.eps[0].IP, guest.HTTPPort)
	ready, drained := hasWeight(ipvs.TCP, rs.vip, added, 1), notServing(ipvs.TCP, rs.vip, terminating)
	took, err := w.waitIPVS(ctx, "the change written during the outage", func(vss []ipvs.VirtualServer) bool { return ready(vss) && drained(vss) })
	if err != nil {
		return err
	}
	w.event("the change written during the outage reached IPVS", max(took, time.Microsecond))
	retry := reflectorRetryBound(rec.length())
	limit := retry + catchUpSlack
	w.run.Note(fmt.Sprintf("outage %s; the change written during it reached IPVS %s after the API server came back (limit %s: the reflector's pending retry, at most %s after an outage that long, + %s)",
		rec.length().Round(time.Millisecond), took.Round(time.Millisecond), limit, retry, catchUpSlack))
	w.run.Check("the change written during the outage reached IPVS within the reflector's retry bound", took <= limit,
		fmt.Sprintf("took %s, limit %s", took.Round(time.Millisecond), limit))
	return nil
}

// reflectorRetryBound is the longest a reflector's pending retry can still wait when an
// outage of that length ends: twice (the jitter) the longest backoff step that may have
// begun before its end, a step beginning at the earliest after the base waits of the
// steps before it.
func reflectorRetryBound(outage time.Duration) time.Duration {
	var begun time.Duration
	step := reflectorBackoffInit
	for step < reflectorBackoffCap && begun+step < outage {
		begun += step
		step = min(2*step, reflectorBackoffCap)
	}
	return 2 * step
}

// removeTerminating finishes the update as the rolling update does: web-1 stays
// terminating for Tune.Terminating (kubelet's shutdown of the pod), is removed from the
// slice, then killed. Removing it at once after the catch-up left source ports whose
// last connection was to web-1 at its deletion, and one such port's next request was
// reset (1 of ~640 requests, twice in ~25 runs, 2026-12-06): the flush of web-1's
// entries could delete that request's new entry, which often had the same original tuple
// and id (fixed: pkg/conntrack deletes by reply tuple, deleteRequest); this scenario is not
// about ports pinned to a removed pod.
func (w *world) removeTerminating(ctx context.Context, rs *rollingService) error {
	time.Sleep(w.env.Tune.Terminating)
	old := rs.eps[0]
	rs.eps = rs.eps[1:]
	gone := absent(ipvs.TCP, rs.vip, netip.AddrPortFrom(old.IP, guest.HTTPPort))
	if err := w.writeAndWait(ctx, rs, "pod "+old.Pod+" removed", gone); err != nil {
		return err
	}
	time.Sleep(w.env.Tune.AfterRemove)
	return w.killPod(w.pods[old.Pod])
}

// watchHealth polls the proxier's /healthz and /livez every healthPoll until the
// returned stop is called.
func (w *world) watchHealth(ctx context.Context) (stop func() healthLog) {
	quit, out := make(chan struct{}), make(chan healthLog, 1)
	go func() {
		var h healthLog
		defer func() { out <- h }()
		for {
			for _, path := range []string{"/healthz", "/livez"} {
				h.polls++
				if err := w.healthy(ctx, path); err != nil {
					h.failed++
					if h.first == "" {
						h.first = fmt.Sprintf("t=%.2fs %v", w.since().Seconds(), err)
					}
				}
			}
			select {
			case <-quit:
				return
			case <-time.After(healthPoll):
			}
		}
	}()
	return func() healthLog { close(quit); return <-out }
}

// healthy asks the health server at path and wants 200 with healthy (and, on /healthz,
// nodeEligible) true.
func (w *world) healthy(ctx context.Context, path string) error {
	body, err := w.node.HTTPGet(ctx, healthzURL+path)
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(body))
	}
	var h struct {
		Healthy      bool  `json:"healthy"`
		NodeEligible *bool `json:"nodeEligible"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return fmt.Errorf("decode %s answer %q: %w", path, body, err)
	}
	if !h.Healthy || (h.NodeEligible != nil && !*h.NodeEligible) {
		return fmt.Errorf("%s: 200 but %s", path, body)
	}
	return nil
}

// checkOutage asserts the scenario's expectations and records its figures.
func (w *world) checkOutage(rs *rollingService, rec outageRecord, health healthLog) error {
	s := results.Summarize(w.run.Requests)
	if w.run.Proxy == OursGateOn || w.env.Profile == "stock" {
		w.run.Check("no failed requests during the outage and after it", s.Failed == 0, failureDetail(s))
	}
	w.run.Check("IPVS kept the rules from before the outage while it lasted (the proxier did not see the change)", rec.changed == "",
		fmt.Sprintf("%d reads; first different: %s", rec.reads, rec.changed))
	w.run.Check("the proxier kept its periodic syncs during the outage", rec.syncs >= 1,
		fmt.Sprintf("%d syncs in %s (syncPeriod %s)", rec.syncs, rec.length().Round(time.Millisecond), w.env.Tune.OutageSyncPeriod))
	timeout := 2 * w.env.Tune.OutageSyncPeriod
	w.run.Note(fmt.Sprintf("health: %d polls of /healthz and /livez from before the outage to the end, %d not healthy; health timeout %s (2 x syncPeriod), outage %s. Expected healthy throughout: %s",
		health.polls, health.failed, timeout, rec.length().Round(time.Millisecond), healthExpectation))
	w.run.Check("/healthz and /livez stayed healthy through the outage (longer than the health timeout) and the catch-up",
		health.polls > 0 && health.failed == 0, fmt.Sprintf("%d of %d polls not healthy; first: %s", health.failed, health.polls, health.first))
	vss, err := w.table.List()
	if err != nil {
		return err
	}
	left := weightZeroLeft(vss)
	w.run.Check("at the end the new pods are served at weight 1 and nothing else",
		len(left) == 0 && servesAll(ipvs.TCP, rs.vip, rss(rs.eps, guest.HTTPPort)...)(vss), ipvs.FormatVirtualServers(vss))
	w.run.Note(fmt.Sprintf("answers by pod: %s; pods at the end: %s", answersByPod(w.run.Requests), strings.Join(slices.Sorted(slices.Values(podNames(rs.eps))), " ")))
	return nil
}
