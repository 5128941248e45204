package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	componentbaseconfigv1alpha1 "k8s.io/component-base/config/v1alpha1"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	"k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/nftables"
	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// testHost is a node made of fakes: an API server (client-go's fake
// clientset), a kernel (the subsystem Fakes) and the host hooks.
type testHost struct {
	client   clientset.Interface
	ipvs     *ipvs.Fake
	ipset    *ipset.Fake
	ipt      map[v1.IPFamily]*iptables.Fake
	netdev   *netdev.Fake
	nft      *nftables.Fake
	registry metrics.KubeRegistry
	ipv6     bool
	// noIPVS: the IPVS netlink socket cannot be opened (no ip_vs module).
	noIPVS bool
	euid   int

	mu             sync.Mutex
	proxierConfigs []ipvsproxy.Config
	zones          []string
	notReadySeen   map[v1.IPFamily][]string
	cleanups       []v1.IPFamily
	conntrackSet   int
	oomScore       int32
}

func newTestHost(t *testing.T) *testHost {
	t.Helper()
	h := &testHost{
		ipvs: ipvs.NewFake(), ipset: ipset.NewFake(), netdev: netdev.NewFake(), registry: metrics.NewKubeRegistry(),
		nft: nftables.NewFake(),
		ipt: map[v1.IPFamily]*iptables.Fake{v1.IPv4Protocol: iptables.NewFake(false), v1.IPv6Protocol: iptables.NewFake(true)},
	}
	if err := h.netdev.AddDevice("eth0", netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *testHost) kernelDeps(family v1.IPFamily) (ipvsproxy.Deps, error) {
	deps := ipvsproxy.Deps{
		IPVS: h.ipvs, IPSet: h.ipset, IPTables: h.ipt[family], NetDev: h.netdev, Conntrack: conntrack.NewFake(),
		Sysctl: sysctl.NewFake(map[string]int{
			"net/ipv4/vs/conntrack": 0, "net/ipv4/vs/conn_reuse_mode": 1, "net/ipv4/vs/expire_nodest_conn": 0,
			"net/ipv4/vs/expire_quiescent_template": 0, "net/ipv4/ip_forward": 0,
		}),
		KernelVersion: "6.1.0-56-amd64",
	}
	if h.noIPVS {
		deps.IPVS = nil
		return deps, errors.New("open IPVS netlink socket: no such file or directory")
	}
	return deps, nil
}

func (h *testHost) env() *Environment {
	return &Environment{
		NewClient: func(componentbaseconfigv1alpha1.ClientConnectionConfiguration, string) (clientset.Interface, error) {
			return h.client, nil
		},
		KernelDeps: h.kernelDeps,
		NewProxier: func(ctx context.Context, cfg ipvsproxy.Config, deps ipvsproxy.Deps) (proxy.Provider, error) {
			h.mu.Lock()
			h.proxierConfigs = append(h.proxierConfigs, cfg)
			h.mu.Unlock()
			p, err := DefaultEnvironment().NewProxier(ctx, cfg, deps)
			return &topologyRecorder{Provider: p, host: h, family: cfg.IPFamily}, err
		},
		CleanupLeftovers: func(ctx context.Context, deps ipvsproxy.Deps) error {
			h.mu.Lock()
			h.cleanups = append(h.cleanups, familyOfIPTables(deps.IPTables))
			h.mu.Unlock()
			return ipvsproxy.CleanupLeftovers(ctx, deps)
		},
		NFTables:          h.nft,
		Geteuid:           func() int { return h.euid },
		SupportedFamilies: func(klog.Logger) (bool, bool) { return true, h.ipv6 },
		SetConntrackSysctls: func(context.Context, *v1alpha1.KubeProxyConntrackConfiguration) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.conntrackSet++
			return nil
		},
		SetOOMScoreAdj: func(score int32) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.oomScore = score
			return nil
		},
		Hostname:        func() (string, error) { return "host-name", nil },
		ApplyLogging:    func(*logsapi.LoggingConfiguration, featuregate.FeatureGate) error { return nil },
		RegisterMetrics: func(ours *ipvsproxy.Metrics, _ featuregate.MutableVersionedFeatureGate) { ours.Register(h.registry) },
		MetricsHandler:  metrics.HandlerFor(h.registry, metrics.HandlerOpts{}),
	}
}

// topologyRecorder notes the zones and the not-Ready nodes the proxier is
// told about.
type topologyRecorder struct {
	proxy.Provider
	host   *testHost
	family v1.IPFamily
}

func (r *topologyRecorder) OnNodesNotReady(names sets.Set[string]) {
	r.host.mu.Lock()
	if r.host.notReadySeen == nil {
		r.host.notReadySeen = map[v1.IPFamily][]string{}
	}
	r.host.notReadySeen[r.family] = append(r.host.notReadySeen[r.family], strings.Join(sets.List(names), ","))
	r.host.mu.Unlock()
	r.Provider.(ipvsproxy.NodeReadinessHandler).OnNodesNotReady(names)
}

func (r *topologyRecorder) OnTopologyChange(labels map[string]string) {
	r.host.mu.Lock()
	r.host.zones = append(r.host.zones, labels[v1.LabelTopologyZone])
	r.host.mu.Unlock()
	r.Provider.OnTopologyChange(labels)
}

func (h *testHost) zonesSeen() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.zones, ",")
}

func familyOfIPTables(ipt iptables.Interface) v1.IPFamily {
	if ipt.IsIPv6() {
		return v1.IPv6Protocol
	}
	return v1.IPv4Protocol
}

func (h *testHost) configs() []ipvsproxy.Config {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ipvsproxy.Config(nil), h.proxierConfigs...)
}

// startCommand runs the command in the background; the returned function
// stops it (SIGTERM's path) and returns its error.
func startCommand(t *testing.T, env *Environment, args []string) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := NewCommand(ctx, env, newTestGate(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd.SetArgs(args)
	result := make(chan error, 1)
	go func() { result <- cmd.Execute() }()
	stopped := func() error {
		cancel()
		select {
		case err := <-result:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("command did not stop within 10s of cancel")
		}
	}
	t.Cleanup(func() { cancel() })
	return stopped, result
}

func testObjects() []any {
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Labels: map[string]string{v1.LabelTopologyZone: "zone-a"}},
		Spec:       v1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status:     v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.0.0.1"}}},
	}
	service := func(name, ip string, labels map[string]string) *v1.Service {
		return &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels},
			Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}
	}
	slice := &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints: []discovery.Endpoint{{Addresses: []string{"10.244.1.5"},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)}}},
		Ports: []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
	return []any{node, slice, service("web", "10.96.0.10", nil),
		service("elsewhere", "10.96.0.11", map[string]string{"service.kubernetes.io/service-proxy-name": "other-proxy"})}
}

func newFakeClient(objects []any) clientset.Interface {
	client := fake.NewClientset()
	honourNodeNameSelector(client)
	for _, o := range objects {
		var err error
		switch obj := o.(type) {
		case *v1.Node:
			_, err = client.CoreV1().Nodes().Create(context.Background(), obj, metav1.CreateOptions{})
		case *v1.Service:
			_, err = client.CoreV1().Services(obj.Namespace).Create(context.Background(), obj, metav1.CreateOptions{})
		case *discovery.EndpointSlice:
			_, err = client.DiscoveryV1().EndpointSlices(obj.Namespace).Create(context.Background(), obj, metav1.CreateOptions{})
		}
		if err != nil {
			panic(fmt.Sprintf("create %T: %v", o, err))
		}
	}
	return client
}

func kubeadmLikeConfig(healthz, metricsAddr string) string {
	return configHeader + fmt.Sprintf(`mode: ""
healthzBindAddress: %s
metricsBindAddress: %s
clusterCIDR: 10.244.0.0/16
nodePortAddresses: [primary]
featureGates:
  IPVSImmediateTermination: true
`, healthz, metricsAddr)
}

// TestServeServices runs the whole command on the fakes: the Service
// reaches IPVS, the servers answer, an event is sent, and SIGTERM's
// cancellation stops it with the rules in place.
func TestServeServices(t *testing.T) {
	host := newTestHost(t)
	host.client = newFakeClient(testObjects())
	healthzAddr, metricsAddr := freePort(t), freePort(t)
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=Worker-1"}, kubeadmLikeConfig(healthzAddr, metricsAddr))
	stop, done := startCommand(t, host.env(), args)

	waitFor(t, "service in IPVS", func() bool {
		select {
		case err := <-done:
			t.Fatalf("command ended: %v", err)
		default:
		}
		return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080")
	})
	dump := host.ipvs.Dump()
	if !strings.Contains(dump, "10.96.0.10:80") || strings.Contains(dump, "10.96.0.11") {
		t.Errorf("IPVS table:\n%s\nwant 10.96.0.10:80 only (10.96.0.11 belongs to another proxy)", dump)
	}
	checkProxierConfig(t, host.configs())
	checkHealthz(t, healthzAddr)
	checkMetricsServer(t, metricsAddr)
	waitFor(t, "Starting event", func() bool { return hasEvent(host.client, "Starting") })
	waitFor(t, "node zone given to the proxier", func() bool { return host.zonesSeen() == "zone-a" })

	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if after := host.ipvs.Dump(); after != dump || len(host.cleanups) != 0 {
		t.Errorf("stopping changed the dataplane (cleanups %v):\n%s", host.cleanups, after)
	}
	if host.conntrackSet != 1 || host.oomScore != -999 {
		t.Errorf("conntrack sysctls set %d times, oom score %d", host.conntrackSet, host.oomScore)
	}
}

func checkProxierConfig(t *testing.T, configs []ipvsproxy.Config) {
	t.Helper()
	if len(configs) != 1 {
		t.Fatalf("%d proxiers, want 1 (single-stack host)", len(configs))
	}
	c := configs[0]
	if c.NodeName != "worker-1" || c.NodeIP != netip.MustParseAddr("10.0.0.1") || !c.ImmediateTermination ||
		c.SyncPeriod != 30*time.Second || c.MinSyncPeriod != 0 || c.MasqueradeBit != 14 {
		t.Errorf("proxier config %+v", c)
	}
	if strings.Join(c.NodePortAddresses, ",") != "10.0.0.1/32" {
		t.Errorf("nodePortAddresses %v, want primary = 10.0.0.1/32", c.NodePortAddresses)
	}
	if !c.LocalDetector.IsImplemented() {
		t.Error("no local traffic detector for clusterCIDR")
	}
}

func checkHealthz(t *testing.T, addr string) {
	t.Helper()
	var body string
	waitFor(t, "healthz 200", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	var health map[string]any
	if err := json.Unmarshal([]byte(body), &health); err != nil {
		t.Fatalf("/healthz %q: %v", body, err)
	}
	for _, key := range []string{"lastUpdated", "currentTime", "nodeEligible"} {
		if _, ok := health[key]; !ok {
			t.Errorf("/healthz %s lacks %s", body, key)
		}
	}
	if status, _, _ := get(t, "http://"+addr+"/livez"); status != http.StatusOK {
		t.Errorf("/livez %d", status)
	}
}

func checkMetricsServer(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "metrics server", func() bool {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		return err == nil
	})
	if _, _, mode := get(t, "http://"+addr+"/proxyMode"); mode != "ipvs" {
		t.Errorf("/proxyMode %q", mode)
	}
	if _, _, body := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, "ipvsproxy_syncs_total") {
		t.Errorf("/metrics lacks ipvsproxy_syncs_total:\n%s", body)
	}
}

func hasEvent(client clientset.Interface, reason string) bool {
	events, err := client.EventsV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, e := range events.Items {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func TestDualStackHost(t *testing.T) {
	host := newTestHost(t)
	host.ipv6 = true
	host.client = newFakeClient(testObjects())
	args := []string{"--hostname-override=worker-1", "--healthz-bind-address=" + freePort(t), "--metrics-bind-address=" + freePort(t)}
	stop, _ := startCommand(t, host.env(), args)
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	configs := host.configs()
	if len(configs) != 2 || configs[0].IPFamily != v1.IPv4Protocol || configs[1].IPFamily != v1.IPv6Protocol {
		t.Fatalf("proxiers %+v, want IPv4 and IPv6", configs)
	}
	if configs[1].NodeIP != netip.MustParseAddr("::1") || configs[0].ImmediateTermination {
		t.Errorf("IPv6 node IP %v (want loopback, the node has no IPv6), immediate %v", configs[1].NodeIP, configs[0].ImmediateTermination)
	}
}

// TestAPIServerDownAtStart: kube-proxy waits (client-go retries with
// backoff) and a SIGTERM meanwhile ends it cleanly, before any proxier.
func TestAPIServerDownAtStart(t *testing.T) {
	host := newTestHost(t)
	env := host.env()
	env.NewClient = func(componentbaseconfigv1alpha1.ClientConnectionConfiguration, string) (clientset.Interface, error) {
		return clientset.NewForConfig(&rest.Config{Host: "http://" + freePort(t)})
	}
	stop, done := startCommand(t, env, []string{"--hostname-override=worker-1"})
	select {
	case err := <-done:
		t.Fatalf("command ended while the API server is down: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if len(host.configs()) != 0 {
		t.Errorf("a proxier was created without the API server")
	}
}

func TestBadKubeconfig(t *testing.T) {
	kubeconfig := writeFile(t, "kubeconfig", "apiVersion: v1\nkind: Config\nclusters: 5\n")
	_, err := newClient(componentbaseconfigv1alpha1.ClientConnectionConfiguration{Kubeconfig: kubeconfig}, "")
	if err == nil || !strings.Contains(errorLine(err), kubeconfig) {
		t.Errorf("error %v does not name %s", err, kubeconfig)
	}
	_, err = newClient(componentbaseconfigv1alpha1.ClientConnectionConfiguration{Kubeconfig: "/nonexistent/kubeconfig"}, "")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("error %v does not name the missing kubeconfig", err)
	}
}

func TestCleanup(t *testing.T) {
	cases := []struct {
		name    string
		ipv6    bool
		inject  error
		wantErr string
		want    []v1.IPFamily
	}{
		{name: "IPv4 host", want: []v1.IPFamily{v1.IPv4Protocol}},
		{name: "dual-stack host", ipv6: true, want: []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}},
		{name: "flush fails", inject: errors.New("netlink: operation not permitted"), wantErr: "flush IPVS table",
			want: []v1.IPFamily{v1.IPv4Protocol}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := newTestHost(t)
			host.ipv6 = tc.ipv6
			svc := ipvs.Service{ServiceKey: ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}, Scheduler: "rr"}
			if err := host.ipvs.AddService(svc); err != nil {
				t.Fatal(err)
			}
			host.ipvs.Inject = func(op, _ string) error {
				if op == "Flush" {
					return tc.inject
				}
				return nil
			}
			cmd, err := NewCommand(t.Context(), host.env(), newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			cmd.SetArgs([]string{"--cleanup"})
			err = cmd.Execute()
			if fmt.Sprint(host.cleanups) != fmt.Sprint(tc.want) {
				t.Errorf("cleaned %v, want %v", host.cleanups, tc.want)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || host.ipvs.Dump() != "" {
				t.Errorf("err %v, IPVS left:\n%s", err, host.ipvs.Dump())
			}
		})
	}
}

// TestVersion: --version starts like upstream's ("Kubernetes v1.37.2") and then
// names ipvs-proxy's build; --version=raw prints upstream's version.Info line and then
// ours. (A binary stamped by hack/lib.sh is checked by hack/image's imagetest.)
func TestVersion(t *testing.T) {
	ours := version.Get()
	cases := map[string][]string{
		"--version": {"Kubernetes " + compatibleVersion + " (ipvs-proxy " + ours.Version + ", commit " + ours.GitCommit + ", " +
			ours.GitTreeState + ", built " + ours.BuildDate + ")\n"},
		"--version=raw": {"version.Info{Major:", "\nipvs-proxy version.Info{Version:\"" + ours.Version + "\", GitCommit:\"" + ours.GitCommit +
			"\", GitTreeState:\"" + ours.GitTreeState + "\", BuildDate:\"" + ours.BuildDate + "\", KubernetesVersion:\"" + compatibleVersion + "\""},
	}
	for arg, want := range cases {
		cmd, err := NewCommand(t.Context(), &Environment{}, newTestGate(t))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetArgs([]string{arg})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, w := range want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s printed %q, want %q in it", arg, out.String(), w)
			}
		}
	}
}

// TestVersionInfoLoggedFirst: the first line kube-proxy logs is its version, before it
// connects (so a node that cannot reach the API server still says what runs).
func TestVersionInfoLoggedFirst(t *testing.T) {
	var out strings.Builder
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&out)))
	env := &Environment{
		Hostname: func() (string, error) { return "node-1", nil },
		NewClient: func(componentbaseconfigv1alpha1.ClientConnectionConfiguration, string) (clientset.Interface, error) {
			return nil, errors.New("no API server here")
		},
	}
	cfg := mustResolve(t, nil)
	if err := runServer(klog.NewContext(t.Context(), logger), cfg, nil, "", env, newTestGate(t), nil); err == nil {
		t.Fatal("runServer without an API client succeeded")
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if want := `] "Version info" version="` + version.Get().String() + `"`; !strings.HasSuffix(first, want) {
		t.Errorf("first log line %q, want it to end with %q", first, want)
	}
}

func TestSupportedKubernetesIsTheVendoredOne(t *testing.T) {
	if compatibleVersion != version.KubernetesRelease {
		t.Errorf("compatibleVersion %s (help text) != %s, the vendored k8s.io/kubernetes", compatibleVersion, version.KubernetesRelease)
	}
}

func TestWriteConfigTo(t *testing.T) {
	path := writeFile(t, "out.yaml", "")
	cmd, err := NewCommand(t.Context(), newTestHost(t).env(), newTestGate(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd.SetArgs([]string{"--write-config-to=" + path, "--ipvs-scheduler=lc"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	cfg := mustResolve(t, []string{"--config=" + path})
	if cfg.IPVS.Scheduler != "lc" || cfg.Mode != modeIPVS {
		t.Errorf("written config %+v", cfg)
	}
}

func TestNodeIPs(t *testing.T) {
	cases := []struct {
		name     string
		fromNode []string
		bind     string
		primary  v1.IPFamily
		v4, v6   string
	}{
		{name: "nothing known", bind: "0.0.0.0", primary: v1.IPv4Protocol, v4: "127.0.0.1", v6: "::1"},
		{name: "node IPv4", fromNode: []string{"10.0.0.1"}, bind: "0.0.0.0", primary: v1.IPv4Protocol, v4: "10.0.0.1", v6: "::1"},
		{name: "node IPv6 primary", fromNode: []string{"fd00::1", "10.0.0.1"}, bind: "::", primary: v1.IPv6Protocol, v4: "10.0.0.1", v6: "fd00::1"},
		{name: "bind address wins", fromNode: []string{"10.0.0.1"}, bind: "10.0.0.9", primary: v1.IPv4Protocol, v4: "10.0.0.9", v6: "::1"},
		{name: "IPv6 bind address", fromNode: []string{"10.0.0.1"}, bind: "fd00::9", primary: v1.IPv6Protocol, v4: "10.0.0.1", v6: "fd00::9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ips []net.IP
			for _, s := range tc.fromNode {
				ips = append(ips, net.ParseIP(s))
			}
			primary, got := detectNodeIPs(klog.Background(), ips, tc.bind)
			if primary != tc.primary || got[v1.IPv4Protocol].String() != tc.v4 || got[v1.IPv6Protocol].String() != tc.v6 {
				t.Errorf("got %s %v", primary, got)
			}
		})
	}
}

func TestProxierConfigPerFamily(t *testing.T) {
	cfg := mustResolve(t, []string{"--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/64,010.1.0.0/16", "--nodeport-addresses=primary,localhost,192.168.0.0/16",
		"--detect-local-mode=NodeCIDR", "--masquerade-all", "--ipvs-strict-arp", "--ipvs-tcp-timeout=9s"})
	nodeIPs := map[v1.IPFamily]net.IP{v1.IPv4Protocol: net.ParseIP("10.0.0.1"), v1.IPv6Protocol: net.IPv6loopback}
	gate := newTestGate(t)
	v4, err := proxierConfig(cfg, v1.IPv4Protocol, "n", nodeIPs, []string{"10.244.1.0/24"}, gate)
	if err != nil {
		t.Fatal(err)
	}
	v6, err := proxierConfig(cfg, v1.IPv6Protocol, "n", nodeIPs, []string{"10.244.1.0/24"}, gate)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(v4.ExcludeCIDRs) != "[10.0.0.0/8 10.1.0.0/16]" || fmt.Sprint(v6.ExcludeCIDRs) != "[fd00::/64]" {
		t.Errorf("exclude CIDRs v4 %v v6 %v", v4.ExcludeCIDRs, v6.ExcludeCIDRs)
	}
	if got := strings.Join(v4.NodePortAddresses, ","); got != "10.0.0.1/32,127.0.0.0/8,::1/128,192.168.0.0/16" {
		t.Errorf("nodePortAddresses %s", got)
	}
	if !v4.LocalDetector.IsImplemented() || v6.LocalDetector.IsImplemented() {
		t.Errorf("NodeCIDR detector: v4 %v v6 %v (node has an IPv4 podCIDR only)", v4.LocalDetector.IsImplemented(), v6.LocalDetector.IsImplemented())
	}
	if !v4.MasqueradeAll || !v4.StrictARP || v4.TCPTimeout != 9*time.Second {
		t.Errorf("config %+v", v4)
	}
}

func TestFamilyMismatchIsFatal(t *testing.T) {
	cfg := mustResolve(t, []string{"--cluster-cidr=fd00::/48"})
	if err := checkFamilyConfig(klog.Background(), cfg, v1.IPv4Protocol, false, nil); err == nil {
		t.Error("IPv6-only clusterCIDR accepted on an IPv4-only host")
	}
	if err := checkFamilyConfig(klog.Background(), cfg, v1.IPv4Protocol, true, nil); err != nil {
		t.Errorf("dual-stack host: %v", err)
	}
}

// TestConfigFileChangeExits: like upstream, a rewritten config file ends
// kube-proxy with an error, so that it is restarted with the new file.
func TestConfigFileChangeExits(t *testing.T) {
	host := newTestHost(t)
	host.client = newFakeClient(testObjects())
	config := writeFile(t, "config.yaml", kubeadmLikeConfig(freePort(t), freePort(t)))
	_, done := startCommand(t, host.env(), []string{"--config=" + config, "--hostname-override=worker-1"})
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
	if err := os.WriteFile(config, []byte(configHeader+"mode: ipvs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "was updated") {
			t.Errorf("command ended with %v, want the config file update", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command kept running after its config file changed")
	}
}
