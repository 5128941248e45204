//go:build integration

package ipvs

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// node is a network namespace set up like a Kubernetes node: pods on a
// bridge, a client host behind eth0, and our proxier on the real kernel.
type node struct {
	t      *testing.T
	pods   map[string]*nettest.Host
	client *nettest.Host
	deps   Deps
}

func newNode(t *testing.T) *node {
	nettest.EnterNewNetns(t)
	nettest.LinkUp(t, "lo")
	n := &node{t: t, pods: map[string]*nettest.Host{}}
	nettest.AddBridge(t, "cbr0", netip.MustParsePrefix("10.244.0.1/24"))
	n.client = nettest.AddHost(t, "eth0", "", netip.MustParsePrefix("192.168.50.2/24"), netip.MustParseAddr("192.168.50.1"))
	table, err := ipvs.New()
	must(t, err)
	n.deps = Deps{IPVS: table, IPSet: ipset.New(), IPTables: iptables.New(false), NetDev: netdev.New(),
		Conntrack: conntrack.New(), Sysctl: sysctl.New(), KernelVersion: kernelRelease(t)}
	return n
}

func kernelRelease(t *testing.T) string {
	out, err := exec.Command("uname", "-r").Output()
	must(t, err)
	return strings.TrimSpace(string(out))
}

// addPod starts an HTTP server answering its own name on port 8080.
func (n *node) addPod(name, ip string) {
	h := nettest.AddHost(n.t, "veth-"+name, "cbr0", netip.MustParsePrefix(ip+"/24"), netip.MustParseAddr("10.244.0.1"))
	n.servePod(name, h)
}

// servePod starts the pod's HTTP server on port 8080 in its namespace.
func (n *node) servePod(name string, h *nettest.Host) {
	n.pods[name] = h
	l := nettest.Listen(n.t, h.NS, ":8080")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, name) })}
	go srv.Serve(l)
	n.t.Cleanup(func() { srv.Close() })
}

// get fetches url without keep-alive from the node itself (or, with from
// set, from inside that host's namespace) and returns the pod's name.
func (n *node) get(from *nettest.Host, url string) (string, error) {
	var conn net.Conn
	var err error
	dial := func() { conn, err = net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), 3*time.Second) }
	if from != nil {
		nettest.In(n.t, from.NS, dial)
	} else {
		dial()
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	body, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	parts := strings.SplitN(string(body), "\r\n\r\n", 2)
	if len(parts) != 2 {
		return "", fmt.Errorf("malformed response %q", body)
	}
	return parts[1], nil
}

// answers makes n requests and counts the answers by pod.
func (n *node) answers(from *nettest.Host, url string, count int) map[string]int {
	got := map[string]int{}
	for range count {
		name, err := n.get(from, url)
		if err != nil {
			name = "error: " + err.Error()
		}
		got[name]++
	}
	return got
}

func ipvsadm(t *testing.T) string {
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm: %v: %s", err, out)
	}
	return string(out)
}

func conntrackList(t *testing.T) string {
	out, _ := exec.Command("conntrack", "-L").CombinedOutput()
	return string(out)
}

func webService() *v1.Service {
	return svc("web", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	})
}

func TestKernelServesClusterIPAndNodePort(t *testing.T) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	n.addPod("pod-b", "10.244.0.11")
	cfg := testConfig(v1.IPv4Protocol)
	cfg.NodeIP = netip.MustParseAddr("192.168.50.1")
	p := newRealProxier(t, n, cfg)
	p.OnServiceAdd(webService())
	p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10"), localEP("10.244.0.11")))
	syncOK(t, p)

	table := ipvsadm(t)
	for _, want := range []string{"TCP  10.96.0.10:80 rr", "-> 10.244.0.10:8080", "-> 10.244.0.11:8080", "TCP  192.168.50.1:30080 rr"} {
		if !strings.Contains(table, want) {
			t.Errorf("ipvsadm lacks %q:\n%s", want, table)
		}
	}
	if got := n.answers(nil, "http://10.96.0.10:80", 6); got["pod-a"] != 3 || got["pod-b"] != 3 {
		t.Errorf("ClusterIP from the node: answers %v, want 3 each", got)
	}
	if got := n.answers(n.client, "http://192.168.50.1:30080", 4); got["pod-a"] != 2 || got["pod-b"] != 2 {
		t.Errorf("NodePort from a client host: answers %v, want 2 each", got)
	}
	// A port no service uses on a service address is rejected, not served by the node.
	if _, err := n.get(n.client, "http://10.96.0.10:22"); err == nil {
		t.Error("connection to an unused port of a service address succeeded")
	}
}

func TestKernelImmediateTerminationDeletesRealServerAndConntrack(t *testing.T) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	n.addPod("pod-b", "10.244.0.11")
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = true
	p := newRealProxier(t, n, cfg)
	p.OnServiceAdd(webService())
	both := slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10"), localEP("10.244.0.11"))
	p.OnEndpointSliceAdd(both)
	syncOK(t, p)
	n.answers(nil, "http://10.96.0.10:80", 4) // leaves TIME_WAIT flows to both pods
	if ct := conntrackList(t); !strings.Contains(ct, "src=10.244.0.10") {
		t.Fatalf("expected conntrack flows from pod-a before removal:\n%s", ct)
	}
	onlyB := both.DeepCopy()
	onlyB.Endpoints = onlyB.Endpoints[1:]
	p.OnEndpointSliceUpdate(both, onlyB)
	syncOK(t, p)
	if table := ipvsadm(t); strings.Contains(table, "10.244.0.10") {
		t.Errorf("pod-a's real server still present:\n%s", table)
	}
	if ct := conntrackList(t); strings.Contains(ct, "src=10.244.0.10 dst=") || !strings.Contains(ct, "src=10.244.0.11") {
		t.Errorf("want pod-a's flows gone and pod-b's kept:\n%s", ct)
	}
	if got := n.answers(nil, "http://10.96.0.10:80", 4); got["pod-b"] != 4 {
		t.Errorf("answers after removal %v, want pod-b only", got)
	}
}

func TestKernelGracefulTerminationParksConnectedRealServer(t *testing.T) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	p := newRealProxier(t, n, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(webService())
	one := slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10"))
	p.OnEndpointSliceAdd(one)
	syncOK(t, p)
	conn, err := net.DialTimeout("tcp", "10.96.0.10:80", 3*time.Second)
	must(t, err)
	defer conn.Close()
	none := one.DeepCopy()
	none.Endpoints = nil
	p.OnEndpointSliceUpdate(one, none)
	syncOK(t, p)
	table := ipvsadm(t)
	if !strings.Contains(table, "-> 10.244.0.10:8080") || !strings.Contains(table, "Masq    0      1") {
		t.Errorf("want pod-a parked at weight 0 with its connection:\n%s", table)
	}
}

func TestKernelCleanupRemovesEverything(t *testing.T) {
	n := newNode(t)
	p := newRealProxier(t, n, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(webService())
	syncOK(t, p)
	must(t, CleanupLeftovers(context.Background(), n.deps))
	if table := ipvsadm(t); strings.Contains(table, "TCP") {
		t.Errorf("IPVS services left:\n%s", table)
	}
	out, _ := exec.Command("iptables-save").CombinedOutput()
	if strings.Contains(string(out), "KUBE-") {
		t.Errorf("iptables left:\n%s", out)
	}
	sets, _ := exec.Command("ipset", "list", "-n").CombinedOutput()
	if strings.Contains(string(sets), "KUBE-") {
		t.Errorf("ipsets left:\n%s", sets)
	}
	if _, err := exec.Command("ip", "link", "show", DummyDevice).CombinedOutput(); err == nil {
		t.Errorf("%s left", DummyDevice)
	}
}

func newRealProxier(t *testing.T, n *node, cfg Config) *Proxier {
	t.Helper()
	deps := n.deps
	deps.Metrics = NewMetrics()
	p, err := NewProxier(context.Background(), cfg, deps)
	must(t, err)
	p.servicesSynced, p.endpointSlicesSynced = true, true
	p.initialized.Store(true)
	t.Cleanup(func() { _ = CleanupLeftovers(context.Background(), deps) })
	return p
}

func TestKernelLoadBalancerSourceRanges(t *testing.T) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	cfg := testConfig(v1.IPv4Protocol)
	cfg.NodeIP = netip.MustParseAddr("192.168.50.1")
	p := newRealProxier(t, n, cfg)
	lb := func(name, clusterIP, ingress, sourceRange string) *v1.Service {
		return svc(name, clusterIP, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 0
			s.Spec.LoadBalancerSourceRanges = []string{sourceRange}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: ingress}}
		})
	}
	p.OnServiceAdd(lb("allowed", "10.96.0.20", "198.51.100.5", "192.168.50.0/24"))
	p.OnServiceAdd(lb("denied", "10.96.0.21", "198.51.100.6", "203.0.113.0/24"))
	p.OnEndpointSliceAdd(slice("allowed", discovery.AddressTypeIPv4, localEP("10.244.0.10")))
	p.OnEndpointSliceAdd(slice("denied", discovery.AddressTypeIPv4, localEP("10.244.0.10")))
	syncOK(t, p)
	if got, err := n.get(n.client, "http://198.51.100.5:80"); err != nil || got != "pod-a" {
		t.Errorf("client inside the source range: %q, %v; want pod-a", got, err)
	}
	if got, err := n.get(n.client, "http://198.51.100.6:80"); err == nil {
		t.Errorf("client outside the source range was served %q", got)
	}
}

func TestKernelIPv6ClusterIP(t *testing.T) {
	n := newNode(t)
	nettest.AddAddress(t, "cbr0", netip.MustParsePrefix("fd00:244::1/64"))
	for i, name := range []string{"pod6-a", "pod6-b"} {
		h := nettest.AddHost(t, "veth-"+name, "cbr0", netip.MustParsePrefix(fmt.Sprintf("fd00:244::%d/64", 10+i)), netip.MustParseAddr("fd00:244::1"))
		n.servePod(name, h)
	}
	deps := n.deps
	deps.IPTables = iptables.New(true)
	n.deps = deps
	p := newRealProxier(t, n, testConfig(v1.IPv6Protocol))
	p.OnServiceAdd(svc("web6", "fd00:96::10", func(s *v1.Service) { s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol} }))
	p.OnEndpointSliceAdd(slice("web6", discovery.AddressTypeIPv6, localEP("fd00:244::10"), localEP("fd00:244::11")))
	syncOK(t, p)
	if table := ipvsadm(t); !strings.Contains(table, "[fd00:96::10]:80") {
		t.Fatalf("ipvsadm lacks the IPv6 virtual server:\n%s", table)
	}
	if got := n.answers(nil, "http://[fd00:96::10]:80", 4); got["pod6-a"] != 2 || got["pod6-b"] != 2 {
		t.Errorf("IPv6 ClusterIP from the node: answers %v, want 2 each", got)
	}
}

func TestKernelHairpin(t *testing.T) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	p := newRealProxier(t, n, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(webService())
	p.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10")))
	syncOK(t, p)
	// pod-a reaches its own service and lands on itself: KUBE-LOOP-BACK
	// masquerades the packet so the reply comes back through the node.
	if got, err := n.get(n.pods["pod-a"], "http://10.96.0.10:80"); err != nil || got != "pod-a" {
		t.Errorf("hairpin from pod-a through its own service: %q, %v", got, err)
		dumpKernelState(t)
	}
}

// dumpKernelState logs what a person debugging a failed traffic test reads.
func dumpKernelState(t *testing.T) {
	for _, cmd := range [][]string{{"iptables-save", "-c"}, {"ipvsadm", "-Lnc"}, {"ipvsadm", "-Ln", "--stats"}, {"conntrack", "-L"}, {"ipset", "list"}, {"ip", "route"}, {"ip", "addr"}} {
		out, _ := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		t.Logf("$ %s\n%s", strings.Join(cmd, " "), out)
	}
}
