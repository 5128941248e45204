package scenario

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/docs"
)

// scrape is one reading of the proxier's /metrics: the metric names it
// declares and the value of every IPv4 (or unlabelled) series.
type scrape struct {
	declared map[string]bool
	series   map[string]float64 // "name{labels}" -> value
}

func parseScrape(body string) scrape {
	s := scrape{declared: map[string]bool{}, series: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ := strings.Cut(rest, " ")
			s.declared[name] = true
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			s.series[line[:i]] = v
		}
	}
	return s
}

// value is the series' value, 0 when absent; labels as the exposition
// writes them (sorted by name), without braces.
func (s scrape) value(name, labels string) float64 {
	if labels != "" {
		name += "{" + labels + "}"
	}
	return s.series[name]
}

// checkMetrics scrapes the real binary: every metric docs/operations.md
// documents is served, and upstream's IPVS-mode metrics moved with this
// scenario's events (syncs, EndpointSlice changes, a Local Service whose
// only endpoint is on another node). Failures and conntrack flushes are
// checked on the fakes (pkg/proxy/ipvs TestIPTablesRestoreFailuresCounted,
// TestConntrackReconcilerMetricsMove).
func (w *world) checkMetrics(ctx context.Context, p svcPods) error {
	edit := func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
	}
	if _, err := w.expose(ctx, httpService("local-remote-only", corev1.ServiceTypeNodePort, edit), p.remote); err != nil {
		return err
	}
	const v4 = `ip_family="IPv4"`
	var s scrape
	for start := time.Now(); ; time.Sleep(250 * time.Millisecond) {
		body, err := w.proxier.Metrics(ctx)
		if err != nil {
			return fmt.Errorf("scrape /metrics: %w", err)
		}
		s = parseScrape(body)
		if s.value("kubeproxy_sync_proxy_rules_no_local_endpoints_total", v4+`,traffic_policy="external"`) >= 1 || time.Since(start) > kernelTimeout {
			break
		}
	}
	var missing []string
	for _, name := range append(docs.MetricNames(), "kubernetes_build_info", "kubernetes_feature_enabled") {
		if !s.declared[name] {
			missing = append(missing, name)
		}
	}
	w.run.Check("/metrics serves every metric docs/operations.md lists", len(missing) == 0, fmt.Sprintf("missing: %v", missing))
	for _, gauge := range []string{"ipvsproxy_real_servers_weight_zero", "ipvsproxy_real_servers_finishing"} {
		_, ok := s.series[gauge+"{"+v4+"}"]
		w.run.Check("real-server gauge has its IPv4 series: "+gauge, ok, fmt.Sprintf("%s{%s} absent", gauge, v4))
	}
	for _, m := range []struct {
		what, name, labels string
	}{
		{"syncs", "kubeproxy_sync_proxy_rules_duration_seconds_count", v4},
		{"full syncs", "kubeproxy_sync_full_proxy_rules_duration_seconds_count", v4},
		{"partial syncs", "kubeproxy_sync_partial_proxy_rules_duration_seconds_count", v4},
		{"last sync time", "kubeproxy_sync_proxy_rules_last_timestamp_seconds", v4},
		{"last queued time", "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", v4},
		{"endpoint changes", "kubeproxy_sync_proxy_rules_endpoint_changes_total", ""},
		{"service changes", "kubeproxy_sync_proxy_rules_service_changes_total", ""},
		{"network programming", "kubeproxy_network_programming_duration_seconds_count", v4},
		{"Local Services without local endpoints (internal)", "kubeproxy_sync_proxy_rules_no_local_endpoints_total", v4 + `,traffic_policy="internal"`},
		{"Local Services without local endpoints (external)", "kubeproxy_sync_proxy_rules_no_local_endpoints_total", v4 + `,traffic_policy="external"`},
	} {
		v := s.value(m.name, m.labels)
		w.run.Check("metric moved: "+m.what, v > 0, fmt.Sprintf("%s{%s} = %v", m.name, m.labels, v))
	}
	w.run.Note(fmt.Sprintf("metrics: %v syncs (%v full, %v partial), %v endpoint changes, %v programming latencies observed",
		s.value("kubeproxy_sync_proxy_rules_duration_seconds_count", v4), s.value("kubeproxy_sync_full_proxy_rules_duration_seconds_count", v4),
		s.value("kubeproxy_sync_partial_proxy_rules_duration_seconds_count", v4), s.value("kubeproxy_sync_proxy_rules_endpoint_changes_total", ""),
		s.value("kubeproxy_network_programming_duration_seconds_count", v4)))
	return nil
}
