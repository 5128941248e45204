package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/ipvs-proxy/ipvs-proxy/docs"
	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestMetricsServerEndpoints(t *testing.T) {
	cfg := mustResolve(t, []string{"--ipvs-scheduler=wrr"})
	registry := metrics.NewKubeRegistry()
	ours := ipvsproxy.NewMetrics()
	ours.Register(registry)
	ours.RealServersDeleted.WithLabelValues("immediate").Inc()
	ours.ConntrackEntriesDeleted.Add(3)
	server := httptest.NewServer(newMetricsMux(cfg, nil, metrics.HandlerFor(registry, metrics.HandlerOpts{})))
	defer server.Close()

	cases := []struct {
		path, contentType string
		want              []string
	}{
		{path: "/proxyMode", contentType: "text/plain", want: []string{"ipvs"}},
		{path: "/healthz", want: []string{"ok"}},
		{path: "/healthz/ping", want: []string{"ok"}},
		{path: "/metrics", want: []string{`ipvsproxy_real_servers_deleted_total{reason="immediate"} 1`, "ipvsproxy_conntrack_entries_deleted_total 3"}},
		{path: "/configz", contentType: "application/json", want: []string{`"kubeproxy.config.k8s.io"`, `"mode":"ipvs"`, `"scheduler":"wrr"`, `"kind":"KubeProxyConfiguration"`}},
		{path: "/version", contentType: "application/json", want: []string{string(must(json.Marshal(version.Get())))}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			status, header, body := get(t, server.URL+tc.path)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			if !strings.HasPrefix(header.Get("Content-Type"), tc.contentType) {
				t.Errorf("content type %q, want %q", header.Get("Content-Type"), tc.contentType)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body does not contain %q:\n%s", w, body)
				}
			}
		})
	}
	if status, _, _ := get(t, server.URL+"/debug/pprof/"); status != http.StatusNotFound {
		t.Errorf("pprof served without enableProfiling: %d", status)
	}
}

func TestConfigzIsTheConfiguration(t *testing.T) {
	cfg := mustResolve(t, []string{"--cluster-cidr=10.0.0.0/8"})
	rec := httptest.NewRecorder()
	configzHandler(cfg, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/configz", nil))
	var got map[string]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["kubeproxy.config.k8s.io"]["clusterCIDR"] != "10.0.0.0/8" || got["kubeproxy.config.k8s.io"]["apiVersion"] != "kubeproxy.config.k8s.io/v1alpha1" {
		t.Errorf("configz %v", got)
	}
}

func TestProfilingEndpoints(t *testing.T) {
	cfg := mustResolve(t, []string{"--profiling"})
	server := httptest.NewServer(newMetricsMux(cfg, nil, http.NotFoundHandler()))
	defer server.Close()
	if status, _, _ := get(t, server.URL+"/debug/pprof/"); status != http.StatusOK {
		t.Errorf("pprof: %d", status)
	}
	if status, _, _ := get(t, server.URL+"/debug/flags/v"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /debug/flags/v: %d, want 405", status)
	}
}

// TestDocumentedMetricsServed runs the command on the fakes with the
// binary's metric registration (the legacy registry) and checks that
// /metrics serves every metric docs/operations.md documents, from the
// first sync on: the docs and the registration cannot drift apart.
func TestDocumentedMetricsServed(t *testing.T) {
	host := newTestHost(t)
	host.client = newFakeClient(testObjects())
	env := host.env()
	env.RegisterMetrics, env.MetricsHandler = DefaultEnvironment().RegisterMetrics, legacyregistry.Handler()
	healthzAddr, metricsAddr := freePort(t), freePort(t)
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=Worker-1"}, kubeadmLikeConfig(healthzAddr, metricsAddr))
	startCommand(t, env, args)
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
	checkHealthz(t, healthzAddr) // the healthz and livez counters have a series once asked
	documented := docs.MetricNames()
	if len(documented) == 0 {
		t.Fatal("docs/operations.md documents no metric")
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, _, body := get(t, "http://"+metricsAddr+"/metrics")
		missing = missing[:0]
		// (kubernetes_build_info is registered by main's imports)
		for _, name := range append(documented, "kubernetes_feature_enabled") {
			if !strings.Contains(body, "\n# TYPE "+name+" ") {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("/metrics lacks %v, which docs/operations.md documents", missing)
	}
	// The real-server gauges have their family's series from the start.
	_, _, body := get(t, "http://"+metricsAddr+"/metrics")
	for _, series := range []string{`ipvsproxy_real_servers_weight_zero{ip_family="IPv4"} 0`, `ipvsproxy_real_servers_finishing{ip_family="IPv4"} 0`} {
		if !strings.Contains(body, "\n"+series+"\n") {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// freePort returns an address on loopback that nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMetricsServerHardFail(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	failures := make(chan serverFailure, 1)
	serveMetrics(t.Context(), busy.Addr().String(), http.NotFoundHandler(), failures)
	select {
	case f := <-failures:
		if f.reason != "FailedToStartMetricServer" || !strings.Contains(f.err.Error(), busy.Addr().String()) {
			t.Errorf("failure %+v", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failure reported for a busy port")
	}
}

func TestMetricsServerStopsWithContext(t *testing.T) {
	addr := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	serveMetrics(ctx, addr, newMetricsMux(mustResolve(t, nil), nil, http.NotFoundHandler()), nil)
	waitFor(t, "metrics server up", func() bool {
		resp, err := http.Get("http://" + addr + "/proxyMode")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	cancel()
	waitFor(t, "metrics server down", func() bool {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		return err != nil
	})
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestBuildInfoMetric: ipvsproxy_build_info is 1 with the build's labels.
func TestBuildInfoMetric(t *testing.T) {
	registry := metrics.NewKubeRegistry()
	info := version.Info{Version: "v0.3.0", GitCommit: "abc", GitTreeState: "clean", BuildDate: "2026-12-06T10:00:00Z",
		KubernetesVersion: "v1.37.2", GoVersion: "go1.26.0", Platform: "linux/arm64"}
	registerBuildInfo(registry, info)
	server := httptest.NewServer(metrics.HandlerFor(registry, metrics.HandlerOpts{}))
	defer server.Close()
	_, _, body := get(t, server.URL)
	want := `ipvsproxy_build_info{build_date="2026-12-06T10:00:00Z",git_commit="abc",git_tree_state="clean",go_version="go1.26.0",kubernetes_version="v1.37.2",platform="linux/arm64",version="v0.3.0"} 1`
	if !strings.Contains(body, want) {
		t.Errorf("metrics lack %s:\n%s", want, body)
	}
}
