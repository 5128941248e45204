// Command cluster-report writes make cluster-demo's report: _output/cluster/report.md
// (one table per scenario of the real cluster, as the scenario scripts appended their
// rows, upstream's rows included) and requests.svg (requests per half second of every
// run that saved its requests, test/e2e/results' plot).
//
//	cluster-report -out _output/cluster [-date "..."] [-commands "..."]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// scenario is one scenario's directory under -out and its title in the report.
type scenario struct{ dir, title, about string }

var scenarios = []scenario{
	{"rolling", "Scenario 1: rolling update", "hack/cluster/scenario-rolling.sh: `rollout restart` (or `set image`) of 3 test-server replicas while clients on node-a reuse 64 source ports each, through the ClusterIP and node-a's NodePort."},
	{"rolling-ipv6", "Scenario 1 through IPv6 Services", "hack/cluster/scenario-rolling.sh with ROLLING_FAMILY=IPv6: the same rollout restart through single-stack IPv6 Services (the ClusterIP and node-a's IPv6 NodePort) on the dual-stack cluster."},
	{"rolling-prestop", "Scenario 1 with a preStop sleep", "hack/cluster/scenario-rolling.sh with ROLLING_PRESTOP=5: the pods sleep 5 s in preStop, so a deleted pod keeps serving (its endpoint terminating and serving) until the sleep ends: the case the gate must leave as upstream does (the rows show whether it did)."},
	{"rolling-legacy", "Scenario 1 on the legacy profile", "hack/cluster/nodes-profile.sh legacy (both nodes rebooted with hack/legacy-ipvs's pre-5.9 ip_vs, conn_reuse_mode=0), then scenario-rolling.sh's rows there."},
	{"nodeloss", "Scenario 2: node loss", "hack/cluster/scenario-nodeloss.sh: node-b's qemu SIGKILLed; times from the kill (host clock)."},
	{"swap", "Scenario 3: image swap on a live cluster", "hack/cluster/scenario-swap.sh: upstream's image, swapped for ours as docs/kubeadm.md says, then the gate by the ConfigMap."},
	{"gate", "Scenario 4: the gate and the annotation end to end", "hack/cluster/scenario-gate.sh: kubeadm's configuration with and without the gate; an annotated and a plain Service."},
}

func main() {
	out := flag.String("out", "_output/cluster", "the cluster's output directory (scenario reports under it)")
	header := flag.String("header", "", "text put under the title (date, commands)")
	flag.Parse()
	if err := run(*out, *header); err != nil {
		fmt.Fprintln(os.Stderr, "cluster-report:", err)
		os.Exit(1)
	}
}

func run(out, header string) error {
	var b strings.Builder
	b.WriteString("# ipvs-proxy on a real cluster (make cluster-demo)\n\n")
	if header != "" {
		b.WriteString(header + "\n\n")
	}
	runs, err := loadRuns(out)
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		b.WriteString("![requests over time](requests.svg)\n\n")
	}
	for _, s := range scenarios {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.title, s.about)
		table, err := os.ReadFile(filepath.Join(out, s.dir, "report.md"))
		switch {
		case os.IsNotExist(err):
			b.WriteString("Not run.\n\n")
		case err != nil:
			return fmt.Errorf("read %s report: %w", s.dir, err)
		default:
			b.Write(table)
			b.WriteString("\n")
		}
	}
	if err := os.WriteFile(filepath.Join(out, "report.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if len(runs) == 0 {
		return nil
	}
	svg := results.RequestsSVG("Real cluster (2 TCG nodes)", runs)
	if err := os.WriteFile(filepath.Join(out, "requests.svg"), []byte(svg), 0o644); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	return nil
}

// loadRuns reads every scenario's saved runs (DIR/ROW/run.json), in scenario order.
func loadRuns(out string) ([]*results.Run, error) {
	var runs []*results.Run
	for _, s := range scenarios {
		files, err := filepath.Glob(filepath.Join(out, s.dir, "*", "run.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read run: %w", err)
			}
			var r results.Run
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, fmt.Errorf("decode run %s: %w", f, err)
			}
			// The panel's label: short, the row's full name is in the table.
			r.Proxy = s.dir + ": " + filepath.Base(filepath.Dir(f))
			r.Profile = "real cluster"
			runs = append(runs, &r)
		}
	}
	return runs, nil
}
