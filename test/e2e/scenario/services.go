package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// Addresses the services scenario gives out (documentation ranges, routed to the node
// by the client's default route).
const (
	externalIP       = "198.51.100.10"
	lbAllowedIP      = "198.51.100.20"
	lbDeniedIP       = "198.51.100.21"
	clientRange      = "192.168.50.0/24"
	otherRange       = "203.0.113.0/24"
	otherNode        = "e2e-other-node"
	answersPerCheck  = 6
	refusedTimeout   = 1500 * time.Millisecond
	positiveAttempts = 20
)

// Services is scenario 1: every Service type through the proxier, from the client
// namespace: ClusterIP, NodePort, ExternalIP, LoadBalancer with source ranges, session
// affinity and externalTrafficPolicy Local (with its health check node port).
func Services(ctx context.Context, env *Env, proxy string) *results.Run {
	return runScenario(ctx, env, results.ScenarioServices, proxy, 0, (*world).services)
}

// svcPods are the pods of the services scenario: two on this node and one that the
// EndpointSlices place on another node.
type svcPods struct {
	a, b, remote cluster.Endpoint
}

func (w *world) services(ctx context.Context) error {
	pods, err := w.startServicePods(ctx)
	if err != nil {
		return err
	}
	checks := []func(context.Context, svcPods) error{
		w.checkClusterIP, w.checkNodePort, w.checkExternalIP, w.checkLoadBalancer,
		w.checkAffinity, w.checkLocalPolicy, w.checkMetrics,
	}
	for i, check := range checks {
		w.env.Printf("services %s: check %d of %d", w.run.Proxy, i+1, len(checks))
		if err := check(ctx, pods); err != nil {
			return err
		}
	}
	return nil
}

func (w *world) startServicePods(ctx context.Context) (svcPods, error) {
	var eps []cluster.Endpoint
	for i, name := range []string{"svc-a", "svc-b", "svc-remote"} {
		p, err := w.startPod(ctx, name, podIP(i))
		if err != nil {
			return svcPods{}, err
		}
		eps = append(eps, w.endpoint(p, cluster.Ready))
	}
	eps[2].Node = otherNode
	return svcPods{a: eps[0], b: eps[1], remote: eps[2]}, nil
}

// expose creates svc with an EndpointSlice of eps, waits until the kernel has the
// virtual server at vip (when valid) with every endpoint, and returns the stored service.
func (w *world) expose(ctx context.Context, svc *corev1.Service, eps ...cluster.Endpoint) (*corev1.Service, error) {
	created, err := w.env.Cluster.CreateService(ctx, svc)
	if err != nil {
		return nil, err
	}
	ports := []cluster.Port{{Name: "http", Protocol: corev1.ProtocolTCP, Port: guest.HTTPPort}}
	if _, err := w.env.Cluster.CreateSlice(ctx, svc.Name, ports, eps); err != nil {
		return nil, err
	}
	vip := netip.AddrPortFrom(netip.MustParseAddr(created.Spec.ClusterIP), 80)
	var rss []netip.AddrPort
	for _, e := range eps {
		rss = append(rss, netip.AddrPortFrom(e.IP, guest.HTTPPort))
	}
	latency, err := w.waitIPVS(ctx, "service "+svc.Name, servesAll(ipvs.TCP, vip, rss...))
	if err != nil {
		return nil, err
	}
	w.event("service "+svc.Name+" programmed", max(latency, time.Microsecond))
	return created, nil
}

// httpService is a service of type typ on port 80 -> the pods' HTTP port.
func httpService(name string, typ corev1.ServiceType, edit func(*corev1.Service)) *corev1.Service {
	svc := tcpService(name, 80, guest.HTTPPort)
	svc.Spec.Type = typ
	if edit != nil {
		edit(svc)
	}
	return svc
}

// answers makes n requests to target from the client and counts the answering pods
// ("error" counts failures).
func (w *world) answers(target netip.AddrPort, n int) map[string]int {
	got := map[string]int{}
	_ = guest.InNetns(w.node.Client.NS, func() error {
		for range n {
			pod, _, err := load.Get(target, 0, load.Timeouts{Connect: refusedTimeout, Total: 3 * time.Second})
			if err != nil {
				pod = "error"
			}
			got[pod]++
		}
		return nil
	})
	return got
}

// expectAnswers retries until n requests to target are answered by exactly the pods in
// want (each at least once), and records the check.
func (w *world) expectAnswers(name string, target netip.AddrPort, want ...string) {
	var got map[string]int
	for range positiveAttempts {
		got = w.answers(target, answersPerCheck)
		if sameKeys(got, want) {
			w.run.Check(name, true, "")
			w.run.Note(fmt.Sprintf("%s: %s answered by %v", name, target, got))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	w.run.Check(name, false, fmt.Sprintf("%s answered by %v, want exactly %v", target, got, want))
}

// expectRefused records whether requests to target end up not served: the proxier may
// program IPVS before the firewall rules of the same sync, so it retries for a while,
// then wants two refusals in a row.
func (w *world) expectRefused(name string, target netip.AddrPort) {
	var got map[string]int
	start := time.Now()
	for time.Since(start) < kernelTimeout {
		if got = w.answers(target, 2); got["error"] == 2 {
			w.run.Check(name, true, "")
			w.run.Note(fmt.Sprintf("%s: %s refused after %s", name, target, time.Since(start).Round(time.Millisecond)))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	w.run.Check(name, false, fmt.Sprintf("%s still answered by %v after %s, want no answer", target, got, kernelTimeout))
}

func sameKeys(got map[string]int, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, k := range want {
		if got[k] == 0 {
			return false
		}
	}
	return true
}

func (w *world) checkClusterIP(ctx context.Context, p svcPods) error {
	svc, err := w.expose(ctx, httpService("clusterip", corev1.ServiceTypeClusterIP, nil), p.a, p.b)
	if err != nil {
		return err
	}
	vip := netip.MustParseAddr(svc.Spec.ClusterIP)
	w.expectAnswers("ClusterIP is served by both pods", netip.AddrPortFrom(vip, 80), p.a.Pod, p.b.Pod)
	w.expectRefused("ClusterIP refuses a port the service does not have", netip.AddrPortFrom(vip, 81))
	return nil
}

func (w *world) checkNodePort(ctx context.Context, p svcPods) error {
	svc, err := w.expose(ctx, httpService("nodeport", corev1.ServiceTypeNodePort, nil), p.a, p.b)
	if err != nil {
		return err
	}
	np := uint16(svc.Spec.Ports[0].NodePort)
	w.expectAnswers("NodePort on the node IP is served by both pods", netip.AddrPortFrom(w.node.IP, np), p.a.Pod, p.b.Pod)
	return nil
}

func (w *world) checkExternalIP(ctx context.Context, p svcPods) error {
	edit := func(s *corev1.Service) { s.Spec.ExternalIPs = []string{externalIP} }
	if _, err := w.expose(ctx, httpService("externalip", corev1.ServiceTypeClusterIP, edit), p.a); err != nil {
		return err
	}
	w.expectAnswers("ExternalIP is served", netip.AddrPortFrom(netip.MustParseAddr(externalIP), 80), p.a.Pod)
	return nil
}

func (w *world) checkLoadBalancer(ctx context.Context, p svcPods) error {
	for _, lb := range []struct {
		name, ip, sourceRange string
		allowed               bool
	}{{"lb-allowed", lbAllowedIP, clientRange, true}, {"lb-denied", lbDeniedIP, otherRange, false}} {
		edit := func(s *corev1.Service) {
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
			s.Spec.LoadBalancerSourceRanges = []string{lb.sourceRange}
		}
		svc, err := w.expose(ctx, httpService(lb.name, corev1.ServiceTypeLoadBalancer, edit), p.b)
		if err != nil {
			return err
		}
		ip := netip.MustParseAddr(lb.ip)
		if _, err := w.env.Cluster.SetLoadBalancerIngress(ctx, svc, ip); err != nil {
			return err
		}
		target := netip.AddrPortFrom(ip, 80)
		if _, err := w.waitIPVS(ctx, "load-balancer IP "+lb.ip, hasWeight(ipvs.TCP, target, netip.AddrPortFrom(p.b.IP, guest.HTTPPort), 1)); err != nil {
			return err
		}
		if lb.allowed {
			w.expectAnswers("LoadBalancer IP serves a client inside loadBalancerSourceRanges", target, p.b.Pod)
		} else {
			w.expectRefused("LoadBalancer IP refuses a client outside loadBalancerSourceRanges", target)
		}
	}
	return nil
}

func (w *world) checkAffinity(ctx context.Context, p svcPods) error {
	edit := func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }
	svc, err := w.expose(ctx, httpService("affinity", corev1.ServiceTypeClusterIP, edit), p.a, p.b)
	if err != nil {
		return err
	}
	got := w.answers(netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80), 2*answersPerCheck)
	w.run.Check("session affinity ClientIP sends every request to one pod", len(got) == 1 && got["error"] == 0, fmt.Sprintf("answered by %v", got))
	w.run.Note(fmt.Sprintf("session affinity: answered by %v", got))
	return nil
}

// checkLocalPolicy: externalTrafficPolicy Local serves the node port from this node's
// endpoint only, the cluster IP from all, and answers its health check node port.
func (w *world) checkLocalPolicy(ctx context.Context, p svcPods) error {
	edit := func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
	svc, err := w.expose(ctx, httpService("local", corev1.ServiceTypeLoadBalancer, edit), p.a, p.remote)
	if err != nil {
		return err
	}
	np := uint16(svc.Spec.Ports[0].NodePort)
	w.expectAnswers("externalTrafficPolicy Local: node port served by the local pod only", netip.AddrPortFrom(w.node.IP, np), p.a.Pod)
	w.expectAnswers("externalTrafficPolicy Local: cluster IP served by local and remote pods", netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80), p.a.Pod, p.remote.Pod)
	w.checkHealthCheckNodePort(svc.Spec.HealthCheckNodePort)
	return nil
}

// checkHealthCheckNodePort asks the service's health check node port from the client.
func (w *world) checkHealthCheckNodePort(port int32) {
	target := netip.AddrPortFrom(w.node.IP, uint16(port))
	var body string
	var err error
	for range positiveAttempts {
		body, err = w.clientHTTPBody(target)
		if err == nil && strings.Contains(body, `"localEndpoints": 1`) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	ok := err == nil && strings.Contains(body, `"localEndpoints": 1`)
	w.run.Check("externalTrafficPolicy Local: health check node port reports 1 local endpoint", ok, fmt.Sprintf("%s: %q, %v", target, body, err))
}

// clientHTTPBody GETs / from target inside the client namespace and returns the body.
func (w *world) clientHTTPBody(target netip.AddrPort) (string, error) {
	var body string
	err := guest.InNetns(w.node.Client.NS, func() error {
		b, err := load.GetBody(target, load.Timeouts{Connect: refusedTimeout, Total: 3 * time.Second})
		body = b
		return err
	})
	return body, err
}
