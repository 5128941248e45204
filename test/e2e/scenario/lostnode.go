package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// The lost-node scenario's second Node: it holds the first pod of each echo service
// (the pods are namespaces of the VM's node like every other; the Node object is
// what the proxier is told about).
const (
	peerNode    = "node-b"
	peerPodCIDR = "10.244.1.0/24"
)

// Its two cases.
const (
	caseNodeLost = "node-lost" // node-b Unknown, its pod's network cut, endpoint not ready
	caseFlap     = "flap"      // control: endpoint not ready on a Ready node-b, pod alive
)

// flapHold is how long the control case watches the streams after the proxier took
// the flapped endpoint out of rotation.
const flapHold = 3 * time.Second

// LostNode is scenario 3's lost-node shape: long-lived connections through a ClusterIP
// to a pod on a Node the node-lifecycle controller marks Unknown (its pods not ready,
// neither removed nor terminating), the pod's network cut; and the control, the same
// endpoint state on a Ready node with the pod alive (a readiness flap).
func LostNode(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioLostNode, proxy, 0, (*world).lostNode)
}

func (w *world) lostNode(ctx context.Context) (err error) {
	if err := w.env.Cluster.EnsureNode(ctx, peerNode, netip.MustParseAddr("192.168.50.3"), peerPodCIDR); err != nil {
		return err
	}
	defer func() {
		if delErr := w.env.Cluster.DeleteNode(ctx, peerNode); delErr != nil && err == nil {
			err = delErr
		}
	}()
	w.env.Printf("lost-node %s: case 1 of 2: readiness flap on a Ready node (control)", w.run.Proxy)
	if err := w.flap(ctx, 0); err != nil {
		return fmt.Errorf("case %s: %w", caseFlap, err)
	}
	w.env.Printf("lost-node %s: case 2 of 2: node lost", w.run.Proxy)
	if err := w.loseNode(ctx, 2); err != nil {
		return fmt.Errorf("case %s: %w", caseNodeLost, err)
	}
	return nil
}

// flap makes the first pod's endpoint not ready while node-b stays Ready and the pod
// runs: every proxier must keep its connections (weight 0, drained).
func (w *world) flap(ctx context.Context, firstPod int) error {
	vip, slice, eps, err := w.startEchoService(ctx, "echo-"+caseFlap, firstPod, peerNode)
	if err != nil {
		return err
	}
	streams, err := w.openStreams(vip, time.Now().Add(flapHold+w.env.Tune.StreamDeadline), eps[0].Pod, eps[1].Pod)
	if err != nil {
		return err
	}
	defer closeStreams(streams)
	t0 := time.Now()
	if err := slice.Set(ctx, firstNotReady(eps)); err != nil {
		return err
	}
	rs := netip.AddrPortFrom(eps[0].IP, guest.EchoPort)
	latency, err := w.waitIPVS(ctx, "flapped endpoint out of rotation", notServing(ipvs.TCP, vip, rs))
	if err != nil {
		return err
	}
	w.event("endpoint of pod "+eps[0].Pod+" not ready (node "+peerNode+" Ready, pod alive)", latency)
	time.Sleep(flapHold)
	alive := true
	for _, r := range w.collectStreams(caseFlap, eps[0].Pod, streams, t0) {
		alive = alive && r.Kind == ""
	}
	w.run.Check(fmt.Sprintf("%s: every stream alive %s after the flap", caseFlap, flapHold), alive, fmt.Sprintf("%+v", w.run.Streams))
	return w.checkRealServer(caseFlap, vip, rs, true)
}

// loseNode cuts the first pod's network, marks node-b Unknown and the pod's endpoint
// not ready, as a node loss does, and records how the streams end.
func (w *world) loseNode(ctx context.Context, firstPod int) error {
	vip, eps, err := w.streamsThroughLoss(ctx, caseNodeLost, firstPod, peerNode, func(slice *cluster.Slice, eps []cluster.Endpoint) error {
		return w.markNodeLost(ctx, slice, eps)
	})
	if err != nil {
		return err
	}
	// Gate off must drain like upstream: the hung connections keep it at weight 0.
	return w.checkRealServer(caseNodeLost, vip, netip.AddrPortFrom(eps[0].IP, guest.EchoPort), w.run.Proxy != OursGateOn)
}

// markNodeLost is a node loss in the order the cluster sees it: the pod unreachable,
// the Node Unknown, then its pods' endpoints not ready.
func (w *world) markNodeLost(ctx context.Context, slice *cluster.Slice, eps []cluster.Endpoint) error {
	if err := w.node.CutNetwork(w.pods[eps[0].Pod]); err != nil {
		return err
	}
	w.event("pod "+eps[0].Pod+": network cut", 0)
	if err := w.env.Cluster.LoseNode(ctx, peerNode); err != nil {
		return err
	}
	w.event("node "+peerNode+": Ready Unknown (NodeStatusUnknown), tainted unreachable", 0)
	if err := slice.Set(ctx, firstNotReady(eps)); err != nil {
		return err
	}
	w.event("endpoint of pod "+eps[0].Pod+": not ready, not serving, not terminating", 0)
	return nil
}

// checkRealServer checks the first pod's real server: kept at weight 0 (drained), or
// deleted.
func (w *world) checkRealServer(how string, vip, rs netip.AddrPort, kept bool) error {
	vss, err := w.table.List()
	if err != nil {
		return fmt.Errorf("list IPVS: %w", err)
	}
	d, present := destination(vss, ipvs.TCP, vip, rs)
	state := "deleted"
	if present {
		state = fmt.Sprintf("weight %d, active %d, inactive %d", d.Weight, d.ActiveConn, d.InactiveConn)
	}
	if kept {
		w.run.Check(fmt.Sprintf("%s: real server kept at weight 0 (drained)", how), present && d.Weight == 0, state)
	} else {
		w.run.Check(fmt.Sprintf("%s: real server deleted", how), !present, state)
	}
	w.run.Note(fmt.Sprintf("%s: real server %s: %s", how, rs, state))
	return nil
}

// firstNotReady is eps with the first endpoint not ready (neither serving nor
// terminating).
func firstNotReady(eps []cluster.Endpoint) []cluster.Endpoint {
	out := append([]cluster.Endpoint(nil), eps...)
	out[0].State = cluster.NotReady
	return out
}
