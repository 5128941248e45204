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

// results.json carries each load run's figures next to it: failed and slower-than-1-s
// requests per row, without recomputing them from the requests.
func TestResultsJSONCarriesFigures(t *testing.T) {
	dir := t.TempDir()
	r := &results.Run{Scenario: results.ScenarioRolling, Proxy: "upstream", Profile: "legacy", Requests: []results.Request{
		{Seq: 1, Dur: 1200 * time.Millisecond, Port: 40000, Pod: "web-1", Kind: results.KindOK},
		{Seq: 2, Start: time.Second, Dur: time.Millisecond, Port: 40001, Kind: results.KindReset},
	}}
	lines, err := results.EncodeLines(r, 1)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "guest.log")
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, "t", "", "rolling/legacy/upstream", []string{log}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Scenario string            `json:"scenario"`
		Requests []json.RawMessage `json:"requests"`
		Figures  *results.Figures  `json:"figures"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Scenario != results.ScenarioRolling || len(got[0].Requests) != 2 || got[0].Figures == nil {
		t.Fatalf("results.json = %s", data)
	}
	if f := got[0].Figures; f.Failed != 1 || f.SlowOK != 1 || f.SlowestOK != 1200*time.Millisecond {
		t.Errorf("figures = %+v, want failed 1, slowOK 1, slowestOK 1.2s", f)
	}
}
