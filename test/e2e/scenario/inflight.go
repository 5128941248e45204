package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// How a pod is lost in the in-flight scenario.
const (
	lossKill = "kill" // process killed, network intact: its sockets close
	lossCut  = "cut"  // network cut first (node-loss shape), then the process killed
)

const (
	streamsPerCase = 4
	streamInterval = 100 * time.Millisecond
	// fastFailure bounds how long a client may take to see a lost connection fail
	// where the test expects it to fail fast.
	fastFailure = 5 * time.Second
)

// Inflight is scenario 3: long-lived connections through a ClusterIP when their pod is
// lost, either killed with its network intact or with its network cut first; it
// measures how long the client takes to see the failure.
func Inflight(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioInflight, proxy, 0, (*world).inflight)
}

func (w *world) inflight(ctx context.Context) error {
	for i, how := range []string{lossKill, lossCut} {
		w.env.Printf("inflight %s: case %d of 2: pod %s", w.run.Proxy, i+1, how)
		if err := w.losePod(ctx, how, 2*i); err != nil {
			return fmt.Errorf("case %s: %w", how, err)
		}
	}
	return nil
}

// losePod opens streams to a two-pod echo service, loses the first pod the way how says
// (and removes its endpoint), and records how each stream ended.
func (w *world) losePod(ctx context.Context, how string, firstPod int) error {
	_, _, err := w.streamsThroughLoss(ctx, how, firstPod, w.env.NodeName, func(slice *cluster.Slice, eps []cluster.Endpoint) error {
		return w.lose(ctx, how, slice, eps)
	})
	return err
}

// streamsThroughLoss starts a two-pod echo service named "echo-"+name (the first pod's
// endpoint on firstNode), opens long-lived streams to both pods, runs lose a second
// later, waits for the first pod's streams to end (or their deadline), and records how
// each stream ended under name. It returns the service and its endpoints.
func (w *world) streamsThroughLoss(ctx context.Context, name string, firstPod int, firstNode string,
	lose func(*cluster.Slice, []cluster.Endpoint) error) (netip.AddrPort, []cluster.Endpoint, error) {
	vip, slice, eps, err := w.startEchoService(ctx, "echo-"+name, firstPod, firstNode)
	if err != nil {
		return vip, nil, err
	}
	lossAt := time.Now().Add(time.Second)
	streams, err := w.openStreams(vip, lossAt.Add(w.env.Tune.StreamDeadline), eps[0].Pod, eps[1].Pod)
	if err != nil {
		return vip, nil, err
	}
	defer closeStreams(streams)
	time.Sleep(time.Until(lossAt))
	t0 := time.Now()
	if err := lose(slice, eps); err != nil {
		return vip, nil, err
	}
	for _, s := range streams {
		if s.Pod == eps[0].Pod {
			s.Wait()
		}
	}
	w.recordStreams(name, eps[0].Pod, streams, t0)
	return vip, eps, nil
}

// startEchoService creates a ClusterIP service on the echo port with two pods, the
// first one's endpoint on firstNode, the second one's on the proxier's node.
func (w *world) startEchoService(ctx context.Context, name string, firstPod int, firstNode string) (netip.AddrPort, *cluster.Slice, []cluster.Endpoint, error) {
	svc := tcpService(name, guest.EchoPort, guest.EchoPort)
	created, err := w.env.Cluster.CreateService(ctx, svc)
	if err != nil {
		return netip.AddrPort{}, nil, nil, err
	}
	vip := netip.AddrPortFrom(netip.MustParseAddr(created.Spec.ClusterIP), guest.EchoPort)
	var eps []cluster.Endpoint
	var rss []netip.AddrPort
	for i := range 2 {
		p, err := w.startPod(ctx, fmt.Sprintf("%s-%d", name, i+1), podIP(firstPod+i))
		if err != nil {
			return vip, nil, nil, err
		}
		eps = append(eps, w.endpoint(p, cluster.Ready))
		rss = append(rss, netip.AddrPortFrom(p.Addr, guest.EchoPort))
	}
	eps[0].Node = firstNode
	ports := []cluster.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: guest.EchoPort}}
	slice, err := w.env.Cluster.CreateSlice(ctx, name, ports, eps)
	if err != nil {
		return vip, nil, nil, err
	}
	_, err = w.waitIPVS(ctx, "service "+name, servesAll(ipvs.TCP, vip, rss...))
	return vip, slice, eps, err
}

// openStreams opens streams until both pods have at least one.
func (w *world) openStreams(vip netip.AddrPort, deadline time.Time, pods ...string) ([]*load.Stream, error) {
	var streams []*load.Stream
	for range streamsPerCase {
		s, err := load.OpenStream(w.node.Client.NS, vip, streamInterval, deadline)
		if err != nil {
			closeStreams(streams)
			return nil, err
		}
		streams = append(streams, s)
	}
	for _, pod := range pods {
		if !anyStreamTo(streams, pod) {
			closeStreams(streams)
			return nil, fmt.Errorf("no stream reached pod %s", pod)
		}
	}
	return streams, nil
}

func anyStreamTo(streams []*load.Stream, pod string) bool {
	for _, s := range streams {
		if s.Pod == pod {
			return true
		}
	}
	return false
}

func closeStreams(streams []*load.Stream) {
	for _, s := range streams {
		s.Close()
	}
}

// lose takes the first pod away: killed with its network, or its network cut, its
// endpoint removed, then killed.
func (w *world) lose(ctx context.Context, how string, slice *cluster.Slice, eps []cluster.Endpoint) error {
	pod := w.pods[eps[0].Pod]
	if how == lossCut {
		if err := w.node.CutNetwork(pod); err != nil {
			return err
		}
		w.event("pod "+pod.Name+": network cut", 0)
	} else if err := w.killPod(pod); err != nil {
		return err
	}
	if err := slice.Set(ctx, eps[1:]); err != nil {
		return err
	}
	w.event("pod "+pod.Name+": endpoint removed", 0)
	if how == lossCut {
		return w.killPod(pod)
	}
	return nil
}

// recordStreams records each stream's end and checks the expectations.
func (w *world) recordStreams(how, lostPod string, streams []*load.Stream, t0 time.Time) {
	survivorsOK, lostFast := true, true
	for i, r := range w.collectStreams(how, lostPod, streams, t0) {
		if !r.Lost && !streams[i].AnsweredToTheEnd() {
			survivorsOK = false
		}
		if r.Lost && (r.Kind == load.KindHung || r.After > fastFailure) {
			lostFast = false
		}
	}
	w.run.Check(fmt.Sprintf("%s: streams to the other pod keep working", how), survivorsOK, fmt.Sprintf("%+v", w.run.Streams))
	if how == lossKill || w.run.Proxy == OursGateOn {
		w.run.Check(fmt.Sprintf("%s: streams to the lost pod fail within %s", how, fastFailure), lostFast, fmt.Sprintf("%+v", w.run.Streams))
	}
}

// collectStreams adds how each stream ended (so far) to the run, times from t0.
func (w *world) collectStreams(how, lostPod string, streams []*load.Stream, t0 time.Time) []results.StreamResult {
	var out []results.StreamResult
	for _, s := range streams {
		ended, at, kind, errText := s.Ended()
		r := results.StreamResult{Case: how, Pod: s.Pod, Lost: s.Pod == lostPod, Kind: kind, Err: errText}
		if ended {
			r.After = at.Sub(t0)
		}
		out = append(out, r)
	}
	w.run.Streams = append(w.run.Streams, out...)
	return out
}
