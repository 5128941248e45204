package scenario

import "testing"

func TestParseScrape(t *testing.T) {
	s := parseScrape(`# HELP kubeproxy_sync_proxy_rules_no_local_endpoints_total [ALPHA] Number of services
# TYPE kubeproxy_sync_proxy_rules_no_local_endpoints_total gauge
kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="external"} 1
kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv6",traffic_policy="external"} 0
# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter
kubeproxy_sync_proxy_rules_endpoint_changes_total 7
`)
	if !s.declared["kubeproxy_sync_proxy_rules_no_local_endpoints_total"] || s.declared["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] {
		t.Errorf("declared %v", s.declared)
	}
	if v := s.value("kubeproxy_sync_proxy_rules_no_local_endpoints_total", `ip_family="IPv4",traffic_policy="external"`); v != 1 {
		t.Errorf("no_local IPv4 external = %v, want 1", v)
	}
	if v := s.value("kubeproxy_sync_proxy_rules_endpoint_changes_total", ""); v != 7 {
		t.Errorf("endpoint_changes_total = %v, want 7", v)
	}
}
