package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

const (
	udpServicePort = 53
	firstUDPPort   = 41000
	udpTimeout     = 2 * time.Second
	protoUDP       = 17
)

// UDP is scenario 4: a UDP flow to an endpoint that is deleted loses its conntrack entry
// (so its next datagram reaches a live pod), while another flow's entry survives.
func UDP(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioUDP, proxy, 0, (*world).udp)
}

// udpFlow is a client source port and the pod its datagrams reach.
type udpFlow struct {
	port int
	pod  string
}

func (w *world) udp(ctx context.Context) error {
	vip, slice, eps, err := w.startUDPService(ctx)
	if err != nil {
		return err
	}
	flows, err := w.udpFlows(vip, eps[0].Pod, eps[1].Pod)
	if err != nil {
		return err
	}
	gone, kept := flows[eps[0].Pod], flows[eps[1].Pod]
	before, err := w.udpEntries(vip)
	if err != nil {
		return err
	}
	w.run.Note("conntrack before: " + strings.Join(before, "; "))
	if err := slice.Set(ctx, eps[1:]); err != nil {
		return err
	}
	latency, err := w.waitIPVS(ctx, "udp real server of "+eps[0].Pod+" deleted", absent(ipvs.UDP, vip, netip.AddrPortFrom(eps[0].IP, guest.UDPPort)))
	if err != nil {
		return err
	}
	w.event("endpoint "+eps[0].Pod+" removed", max(latency, time.Microsecond))
	if err := w.killPod(w.pods[eps[0].Pod]); err != nil {
		return err
	}
	return w.checkUDPAfter(vip, eps, gone, kept)
}

func (w *world) startUDPService(ctx context.Context) (netip.AddrPort, *cluster.Slice, []cluster.Endpoint, error) {
	svc := &corev1.Service{
		ObjectMeta: objectMeta("dns"),
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{
			Name: "dns", Protocol: corev1.ProtocolUDP, Port: udpServicePort, TargetPort: intstr.FromInt32(guest.UDPPort),
		}}},
	}
	created, err := w.env.Cluster.CreateService(ctx, svc)
	if err != nil {
		return netip.AddrPort{}, nil, nil, err
	}
	vip := netip.AddrPortFrom(netip.MustParseAddr(created.Spec.ClusterIP), udpServicePort)
	var eps []cluster.Endpoint
	var rss []netip.AddrPort
	for i := range 2 {
		p, err := w.startPod(ctx, fmt.Sprintf("dns-%d", i+1), podIP(i))
		if err != nil {
			return vip, nil, nil, err
		}
		eps = append(eps, w.endpoint(p, cluster.Ready))
		rss = append(rss, netip.AddrPortFrom(p.Addr, guest.UDPPort))
	}
	ports := []cluster.Port{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: guest.UDPPort}}
	slice, err := w.env.Cluster.CreateSlice(ctx, "dns", ports, eps)
	if err != nil {
		return vip, nil, nil, err
	}
	_, err = w.waitIPVS(ctx, "service dns", servesAll(ipvs.UDP, vip, rss...))
	return vip, slice, eps, err
}

// udpFlows sends from successive source ports until each pod has one flow.
func (w *world) udpFlows(vip netip.AddrPort, pods ...string) (map[string]udpFlow, error) {
	flows := map[string]udpFlow{}
	for port := firstUDPPort; port < firstUDPPort+10 && len(flows) < len(pods); port++ {
		pod, err := load.AskUDP(w.node.Client.NS, port, vip, udpTimeout)
		if err != nil {
			return nil, err
		}
		if _, ok := flows[pod]; !ok {
			flows[pod] = udpFlow{port: port, pod: pod}
		}
	}
	for _, p := range pods {
		if _, ok := flows[p]; !ok {
			return nil, fmt.Errorf("no UDP flow reached pod %s: %v", p, flows)
		}
	}
	return flows, nil
}

// udpEntries lists the node's conntrack entries toward vip.
func (w *world) udpEntries(vip netip.AddrPort) ([]string, error) {
	flows, err := w.node.Conntrack()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range flows {
		if f.Proto == protoUDP && f.OrigDst == vip {
			out = append(out, f.String())
		}
	}
	return out, nil
}

// hasEntry tells whether an entry from client port port to vip answered by pod ip exists.
func hasEntry(entries []string, port int, ip netip.Addr) bool {
	for _, e := range entries {
		if strings.Contains(e, fmt.Sprintf(":%d ->", port)) && strings.Contains(e, "reply from "+ip.String()+":") {
			return true
		}
	}
	return false
}

// checkUDPAfter checks the conntrack table and where both flows' next datagrams go.
func (w *world) checkUDPAfter(vip netip.AddrPort, eps []cluster.Endpoint, gone, kept udpFlow) error {
	after, err := w.udpEntries(vip)
	if err != nil {
		return err
	}
	w.run.Note("conntrack after: " + strings.Join(after, "; "))
	w.run.Check("the removed endpoint's UDP conntrack entry is flushed", !hasEntry(after, gone.port, eps[0].IP), strings.Join(after, "\n"))
	w.run.Check("the other flow's conntrack entry survives", hasEntry(after, kept.port, eps[1].IP), strings.Join(after, "\n"))
	for _, f := range []udpFlow{gone, kept} {
		pod, err := load.AskUDP(w.node.Client.NS, f.port, vip, udpTimeout)
		w.run.Check(fmt.Sprintf("source port %d (was %s) is answered by %s", f.port, f.pod, eps[1].Pod), err == nil && pod == eps[1].Pod, fmt.Sprintf("answer %q, %v", pod, err))
	}
	return nil
}
