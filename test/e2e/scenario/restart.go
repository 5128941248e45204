package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// repairSlack is what "within one sync period" allows on top of the period and the
// duration of the repairing sync: scheduling and the poll.
const repairSlack = time.Second

// Restart is scenario 5: the proxier is killed (SIGKILL) in the middle of a rolling
// update while a terminating endpoint's real server is parked at weight 0 with an open
// connection; the endpoint vanishes while it is down (removed, its pod lost without
// closing that connection); after its restart, its first sync leaves no real server of
// the vanished endpoint with the gate on, and keeps it at weight 0 (connected) with the
// gate off, as upstream does. Then external tampering (ipvsadm -C,
// a service address removed from kube-ipvs0) must be repaired within one sync period.
func Restart(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioRestart, proxy, env.Tune.RestartSyncPeriod, (*world).restart)
}

// restartService is the two-port service of the restart scenario.
type restartService struct {
	ip    netip.Addr
	slice *cluster.Slice
	eps   []cluster.Endpoint
}

func (rs *restartService) http() netip.AddrPort { return netip.AddrPortFrom(rs.ip, 80) }
func (rs *restartService) echo() netip.AddrPort { return netip.AddrPortFrom(rs.ip, guest.EchoPort) }

func (w *world) restart(ctx context.Context) error {
	rs, err := w.startRestartService(ctx)
	if err != nil {
		return err
	}
	streams, err := w.openStreams(rs.echo(), time.Now().Add(5*time.Minute), rs.eps[0].Pod)
	if err != nil {
		return err
	}
	defer closeStreams(streams)
	if err := w.crashMidUpdate(ctx, rs); err != nil {
		return err
	}
	if err := w.restartAndCheck(ctx, rs); err != nil {
		return err
	}
	return w.tamper(ctx, rs)
}

func (w *world) startRestartService(ctx context.Context) (*restartService, error) {
	svc := &corev1.Service{
		ObjectMeta: objectMeta("web"),
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(guest.HTTPPort)},
			{Name: "echo", Protocol: corev1.ProtocolTCP, Port: guest.EchoPort, TargetPort: intstr.FromInt32(guest.EchoPort)},
		}},
	}
	created, err := w.env.Cluster.CreateService(ctx, svc)
	if err != nil {
		return nil, err
	}
	rs := &restartService{ip: netip.MustParseAddr(created.Spec.ClusterIP)}
	for i := range 3 {
		p, err := w.startPod(ctx, fmt.Sprintf("web-%d", i+1), podIP(i))
		if err != nil {
			return nil, err
		}
		rs.eps = append(rs.eps, w.endpoint(p, cluster.Ready))
	}
	ports := []cluster.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: guest.HTTPPort}, {Name: "echo", Protocol: corev1.ProtocolTCP, Port: guest.EchoPort}}
	if rs.slice, err = w.env.Cluster.CreateSlice(ctx, "web", ports, rs.eps); err != nil {
		return nil, err
	}
	_, err = w.waitIPVS(ctx, "service web", servesAll(ipvs.TCP, rs.echo(), rss(rs.eps, guest.EchoPort)...))
	return rs, err
}

func rss(eps []cluster.Endpoint, port uint16) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(eps))
	for _, e := range eps {
		out = append(out, netip.AddrPortFrom(e.IP, port))
	}
	return out
}

// crashMidUpdate adds a new pod, makes web-1 terminating (kept at weight 0 by its open
// connection under the graceful policy), kills the proxier, then removes web-1 and kills
// its pod while the proxier is down.
func (w *world) crashMidUpdate(ctx context.Context, rs *restartService) error {
	eps, err := w.readyWeb4TerminateFirst(ctx, rs.slice, rs.eps)
	if err != nil {
		return err
	}
	rs.eps = eps
	old := netip.AddrPortFrom(rs.eps[0].IP, guest.EchoPort)
	latency, err := w.waitIPVS(ctx, "web-1 not serving", notServing(ipvs.TCP, rs.echo(), old))
	if err != nil {
		return err
	}
	w.event("web-4 ready, web-1 terminating", max(latency, time.Microsecond))
	vss, _ := w.table.List()
	w.run.Note("before the crash: " + strings.Join(weightZeroLeft(vss), "; "))
	if err := w.proxier.Kill(); err != nil {
		return err
	}
	w.event("proxier killed (SIGKILL)", 0)
	rs.eps = rs.eps[1:]
	if err := rs.slice.Set(ctx, rs.eps); err != nil {
		return err
	}
	// The pod vanishes without closing its connections (its network goes first, as on a
	// lost node), so the client's connection keeps the real server's counter up.
	if err := w.node.CutNetwork(w.pods["web-1"]); err != nil {
		return err
	}
	if err := w.killPod(w.pods["web-1"]); err != nil {
		return err
	}
	w.event("web-1 removed, its network cut and its process killed while the proxier was down", 0)
	return nil
}

// restartAndCheck starts the proxier again and looks at IPVS right after its first sync.
func (w *world) restartAndCheck(ctx context.Context, rs *restartService) error {
	spec := w.proxier.Spec
	w.proxier = nil
	if err := w.startProxier(ctx, spec); err != nil {
		return err
	}
	vss, err := w.table.List()
	if err != nil {
		return err
	}
	status, _ := w.proxier.Syncs(ctx)
	fullSync := time.Duration(status.DurationSum / float64(max(status.Syncs, 1)) * float64(time.Second))
	w.event(fmt.Sprintf("proxier restarted; IPVS read after sync %d", status.Syncs), 0)
	gone := netip.AddrPortFrom(podIP(0), 0)
	var left []string
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			if d.Address == gone.Addr() {
				left = append(left, fmt.Sprintf("%s -> %s weight %d", vs.ServiceKey, d.DestinationKey, d.Weight))
			}
		}
	}
	detail := fmt.Sprintf("left: %s\n%s", strings.Join(left, "; "), ipvs.FormatVirtualServers(vss))
	if w.run.Proxy == OursGateOn {
		// The immediate policy deletes a leftover whose endpoint left every slice.
		w.run.Check("after the first sync no real server of the vanished endpoint is left", len(left) == 0, detail)
	} else {
		// Gate off is upstream's: a weight-0 leftover with a connection is kept until idle
		// (a restart cuts no connection, also to a live pod).
		w.run.Check("after the first sync the vanished endpoint's weight-0 real server is kept while connected, as upstream",
			len(left) > 0 && !strings.Contains(strings.Join(left, ";"), "weight 1"), detail)
	}
	w.run.Note(fmt.Sprintf("read after sync #%d of the new process (a full sync of %s); real servers of the vanished pod: %d", status.Syncs, fullSync.Round(time.Millisecond), len(left)))
	_, err = w.waitIPVS(ctx, "new pods serve", servesAll(ipvs.TCP, rs.http(), rss(rs.eps, guest.HTTPPort)...))
	return err
}

// tamper flushes IPVS behind the proxier's back and removes the service address from
// kube-ipvs0, and measures how long each repair takes.
func (w *world) tamper(ctx context.Context, rs *restartService) error {
	repair := func(what string, damage func() error, repaired func() (time.Duration, error)) error {
		before, _ := w.proxier.Syncs(ctx)
		if err := damage(); err != nil {
			return err
		}
		w.event(what, 0)
		took, err := repaired()
		after, _ := w.proxier.Syncs(ctx)
		limit := w.repairLimit(before, after)
		w.event(fmt.Sprintf("%s: repaired after %s", what, took.Round(time.Millisecond)), 0)
		w.run.Check(fmt.Sprintf("%s repaired within one sync period", what), err == nil && took <= limit,
			fmt.Sprintf("took %s, limit %s: %v", took.Round(time.Millisecond), limit.Round(time.Millisecond), err))
		return nil
	}
	err := repair("ipvsadm -C", func() error {
		out, err := guest.RunIn(w.node.NS, exec.Command("ipvsadm", "-C"))
		if err != nil {
			return fmt.Errorf("ipvsadm -C: %w: %s", err, out)
		}
		return nil
	}, func() (time.Duration, error) {
		return w.waitIPVS(ctx, "virtual servers restored", servesAll(ipvs.TCP, rs.http(), rss(rs.eps, guest.HTTPPort)...))
	})
	if err != nil {
		return err
	}
	err = repair("service address removed from "+DummyDevice, func() error {
		return w.node.DeleteAddr(DummyDevice, netip.PrefixFrom(rs.ip, 32))
	}, func() (time.Duration, error) { return w.waitAddress(ctx, rs.ip) })
	if err != nil {
		return err
	}
	w.expectAnswers("the service answers after the repairs", rs.http(), podNames(rs.eps)...)
	return nil
}

// repairLimit is what "within one sync period" allows: the next periodic sync starts at
// most syncPeriod later, plus the time the proxier spent syncing meanwhile (its own
// metrics, before and after), plus slack for the poll.
func (w *world) repairLimit(before, after guest.SyncStatus) time.Duration {
	syncing := time.Duration((after.DurationSum - before.DurationSum) * float64(time.Second))
	return w.env.Tune.RestartSyncPeriod + max(syncing, 0) + repairSlack
}

// DummyDevice is the interface a proxier in IPVS mode puts service addresses on.
const DummyDevice = "kube-ipvs0"

func (w *world) waitAddress(ctx context.Context, ip netip.Addr) (time.Duration, error) {
	start := time.Now()
	for {
		addrs, err := w.node.Addrs(DummyDevice)
		for _, a := range addrs {
			if a == ip {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > kernelTimeout || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("address %s not back on %s (last error %v)", ip, DummyDevice, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func podNames(eps []cluster.Endpoint) []string {
	out := make([]string, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.Pod)
	}
	return out
}

// readyWeb4TerminateFirst starts pod web-4 and writes it ready and the first endpoint
// terminating, in one EndpointSlice write; it returns the endpoints written.
func (w *world) readyWeb4TerminateFirst(ctx context.Context, slice *cluster.Slice, eps []cluster.Endpoint) ([]cluster.Endpoint, error) {
	p, err := w.startPod(ctx, "web-4", podIP(3))
	if err != nil {
		return eps, err
	}
	eps = append(eps, w.endpoint(p, cluster.Ready))
	eps[0].State = cluster.Terminating
	return eps, slice.Set(ctx, eps)
}
