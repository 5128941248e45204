package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

func TestReport(t *testing.T) {
	out := t.TempDir()
	table := "| row | requests |\n|---|---|\n| upstream | 10 |\n"
	if err := os.MkdirAll(filepath.Join(out, "swap", "overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "swap", "report.md"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	// The legacy profile's rolling rows have a section of their own.
	if err := os.MkdirAll(filepath.Join(out, "rolling-legacy"), 0o755); err != nil {
		t.Fatal(err)
	}
	legacy := "| row | ip_vs on node-a |\n|---|---|\n| upstream | legacy (ip_vs taint OE) |\n"
	if err := os.WriteFile(filepath.Join(out, "rolling-legacy", "report.md"), []byte(legacy), 0o644); err != nil {
		t.Fatal(err)
	}
	// So have the IPv6 and preStop rows.
	for dir, row := range map[string]string{"rolling-ipv6": "| gate on; restart; IPv6 |", "rolling-prestop": "| gate on; restart, preStop sleep 5 s |"} {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, dir, "report.md"), []byte("| row |\n|---|\n"+row+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := results.Run{Requests: []results.Request{{Start: time.Second, Kind: results.KindOK}, {Start: 2 * time.Second, Kind: results.KindConnectTimeout}}}
	raw, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(out, "swap", "overlay", "run.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(out, ""); err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Scenario 3: image swap on a live cluster", "| upstream | 10 |", "![requests over time](requests.svg)", "## Scenario 2: node loss\n\nhack/cluster/scenario-nodeloss.sh",
		"## Scenario 1 on the legacy profile\n\nhack/cluster/nodes-profile.sh legacy", "| upstream | legacy (ip_vs taint OE) |",
		"## Scenario 1 through IPv6 Services\n\nhack/cluster/scenario-rolling.sh with ROLLING_FAMILY=IPv6", "| gate on; restart; IPv6 |",
		"## Scenario 1 with a preStop sleep\n\nhack/cluster/scenario-rolling.sh with ROLLING_PRESTOP=5", "| gate on; restart, preStop sleep 5 s |"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(string(report), "Not run.") {
		t.Errorf("report.md does not say which scenarios did not run:\n%s", report)
	}
	svg, err := os.ReadFile(filepath.Join(out, "requests.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(svg), "swap: overlay") || !strings.Contains(string(svg), "1 of 2 failed") {
		t.Errorf("requests.svg lacks the swap run's panel:\n%.500s", svg)
	}
}
