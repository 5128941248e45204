package docs

import (
	"slices"
	"testing"
)

func TestMetricNames(t *testing.T) {
	names := MetricNames()
	for _, want := range []string{"ipvsproxy_syncs_total", "kubeproxy_sync_full_proxy_rules_duration_seconds",
		"kubeproxy_conntrack_reconciler_deleted_entries_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricNames() = %v, lacks %s", names, want)
		}
	}
	if len(names) < 19 {
		t.Errorf("MetricNames() found %d names, want the 3 of ipvs-proxy and the 16 of upstream at least: %v", len(names), names)
	}
}
