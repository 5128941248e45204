package deploytest

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// These checks need no API server: they read the manifests and the docs.

// kubeProxyConfig is the part of deploy/'s KubeProxyConfiguration the
// DaemonSet and the monitoring manifests must agree with.
type kubeProxyConfig struct {
	HealthzBindAddress string `json:"healthzBindAddress"`
	MetricsBindAddress string `json:"metricsBindAddress"`
}

func renderedConfig(t *testing.T) kubeProxyConfig {
	t.Helper()
	var cfg kubeProxyConfig
	data, err := os.ReadFile(filepath.Join(configFiles(t), "config.conf"))
	if err == nil {
		err = yaml.Unmarshal(data, &cfg)
	}
	if err != nil {
		t.Fatalf("deploy/ ConfigMap config.conf: %v", err)
	}
	return cfg
}

// container is the DaemonSet's kube-proxy container, as the checks read it.
type container struct {
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	LivenessProbe, ReadinessProbe, StartupProbe *probe
}

type probe struct {
	HTTPGet *struct {
		Host string `json:"host"`
		Path string `json:"path"`
		Port any    `json:"port"` // a number or a port name
	} `json:"httpGet"`
}

func renderedDaemonSet(t *testing.T) (*unstructured.Unstructured, container) {
	t.Helper()
	for _, obj := range render(t, deployDir()) {
		if obj.GetKind() != "DaemonSet" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		if len(containers) != 1 {
			t.Fatalf("the DaemonSet has %d containers, want 1", len(containers))
		}
		data, err := yaml.Marshal(containers[0])
		var c container
		if err == nil {
			err = yaml.Unmarshal(data, &c)
		}
		if err != nil {
			t.Fatal(err)
		}
		return obj, c
	}
	t.Fatal("deploy/ has no DaemonSet")
	return nil, container{}
}

// portNumber resolves a probe's or a monitor's port (number or name).
func (c container) portNumber(port any) int {
	switch p := port.(type) {
	case float64:
		return int(p)
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func splitAddress(t *testing.T, what, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n := 0
	for _, r := range port {
		n = n*10 + int(r-'0')
	}
	return host, n
}

// TestProbesFollowHealthzBindAddress: no liveness or startup probe (the
// health server starts only once the API server answered: a liveness probe
// restart-loops kube-proxy through an API outage at boot), and the readiness
// probe asks what healthzBindAddress serves: its port, and a host the
// address answers on (none, i.e. the pod IP = the node IP on the host
// network, for 0.0.0.0 or a node IP; the loopback address itself for a
// loopback one). No probe at all when the health server is off.
func TestProbesFollowHealthzBindAddress(t *testing.T) {
	cfg := renderedConfig(t)
	_, c := renderedDaemonSet(t)
	if c.LivenessProbe != nil || c.StartupProbe != nil {
		t.Errorf("the DaemonSet has a liveness or startup probe: it kills kube-proxy while the API server is unreachable at boot")
	}
	if cfg.HealthzBindAddress == "" {
		if c.ReadinessProbe != nil {
			t.Error("healthzBindAddress is empty (no health server) but the DaemonSet probes it")
		}
		return
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil {
		t.Fatal("no readiness probe on the health server: a rolling update would not wait for the new pod")
	}
	get := c.ReadinessProbe.HTTPGet
	host, port := splitAddress(t, "healthzBindAddress", cfg.HealthzBindAddress)
	if got := c.portNumber(get.Port); got != port {
		t.Errorf("readiness probe port %v (%d), healthzBindAddress %s", get.Port, got, cfg.HealthzBindAddress)
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil || ip.IsUnspecified():
		if get.Host != "" && get.Host != "127.0.0.1" {
			t.Errorf("readiness probe host %q: %s serves the pod (node) IP and loopback", get.Host, cfg.HealthzBindAddress)
		}
	case ip.IsLoopback():
		if get.Host != host {
			t.Errorf("readiness probe host %q, want %s (healthzBindAddress %s)", get.Host, host, cfg.HealthzBindAddress)
		}
	default:
		if get.Host != "" && get.Host != host {
			t.Errorf("readiness probe host %q, want none (the node IP) or %s", get.Host, host)
		}
	}
	if get.Path != "/healthz" {
		t.Errorf("readiness probe path %q, want /healthz", get.Path)
	}
	if _, metricsPort := splitAddress(t, "metricsBindAddress", cfg.MetricsBindAddress); c.portNumber("metrics") != metricsPort {
		t.Errorf("container port metrics = %d, metricsBindAddress %s", c.portNumber("metrics"), cfg.MetricsBindAddress)
	}
}

// documentedMetrics lists the metric names of docs/operations.md's
// "Metrics" tables (the list the cmd/kube-proxy tests check against the
// binary's registration).
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir(), "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(data), "\n## Metrics\n")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z][a-z0-9_]*)` \\|")
	var names []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		names = append(names, m[1])
	}
	if len(names) < 20 {
		t.Fatalf("docs/operations.md documents %d metrics; the parser is broken", len(names))
	}
	return names
}

// readMonitoring parses one file of deploy/monitoring.
func readMonitoring(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir(), "monitoring", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("deploy/monitoring/%s: %v", name, err)
	}
}

var metricName = regexp.MustCompile(`\b((?:ipvsproxy|kubeproxy|kubernetes)_[a-z0-9_]+)\b`)

// TestPrometheusRule: every alert is complete, and every metric its
// expression uses is one docs/operations.md documents (a histogram's
// _bucket, _count and _sum series count as the histogram).
func TestPrometheusRule(t *testing.T) {
	var rule struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert       string            `json:"alert"`
					Expr        string            `json:"expr"`
					For         string            `json:"for"`
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	readMonitoring(t, "prometheusrule.yaml", &rule)
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" || len(rule.Spec.Groups) == 0 {
		t.Fatalf("prometheusrule.yaml: %s %s with %d groups", rule.APIVersion, rule.Kind, len(rule.Spec.Groups))
	}
	documented := documentedMetrics(t)
	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: want alert, expr, labels.severity and annotations.summary", r.Alert)
			}
			used := metricName.FindAllString(r.Expr, -1)
			if len(used) == 0 {
				t.Errorf("alert %s uses no kube-proxy metric: %s", r.Alert, r.Expr)
			}
			for _, name := range used {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if !slices.Contains(documented, name) && !slices.Contains(documented, base) {
					t.Errorf("alert %s uses %s, which docs/operations.md does not document (so the binary may not serve it)", r.Alert, name)
				}
			}
		}
	}
	t.Logf("%d alerts, every metric documented", alerts)
}

// TestPodMonitor: the PodMonitor selects the DaemonSet's pods in its
// namespace and scrapes the port of metricsBindAddress at /metrics.
func TestPodMonitor(t *testing.T) {
	var pm struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			PodMetricsEndpoints []struct {
				Port        string           `json:"port"`
				Path        string           `json:"path"`
				Interval    string           `json:"interval"`
				Relabelings []map[string]any `json:"relabelings"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	readMonitoring(t, "podmonitor.yaml", &pm)
	if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Kind != "PodMonitor" || len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("podmonitor.yaml: %s %s with %d endpoints", pm.APIVersion, pm.Kind, len(pm.Spec.PodMetricsEndpoints))
	}
	ds, c := renderedDaemonSet(t)
	podLabels, _, _ := unstructured.NestedStringMap(ds.Object, "spec", "template", "metadata", "labels")
	for k, v := range pm.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("PodMonitor selects %s=%s; the DaemonSet's pods have %v", k, v, podLabels)
		}
	}
	if !slices.Contains(pm.Spec.NamespaceSelector.MatchNames, ds.GetNamespace()) {
		t.Errorf("PodMonitor namespaces %v lack the DaemonSet's %s", pm.Spec.NamespaceSelector.MatchNames, ds.GetNamespace())
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	_, metricsPort := splitAddress(t, "metricsBindAddress", renderedConfig(t).MetricsBindAddress)
	if got := c.portNumber(ep.Port); got != metricsPort || ep.Path != "/metrics" {
		t.Errorf("PodMonitor scrapes port %q (%d) path %q; metricsBindAddress's port is %d, path /metrics", ep.Port, got, ep.Path, metricsPort)
	}
}

// codeBlocks returns the fenced code blocks of a language in a Markdown file.
func codeBlocks(t *testing.T, path, lang string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(data)
	for {
		_, after, ok := strings.Cut(rest, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, tail, _ := strings.Cut(after, "```")
		blocks, rest = append(blocks, block), tail
	}
}

// kubeadm's patch file names: target[suffix][+patchtype].extension
// (cmd/kubeadm/app/util/patches); the patch must target the kube-proxy
// DaemonSet and nothing else.
var kubeadmPatchFile = regexp.MustCompile(`^kubeproxydaemonset[^+.]*(\+(strategic|merge|json))?\.(yaml|json)$`)

// TestUpgradeDocsPatchEveryRenderingCommand: docs/kubeadm.md passes the
// same patches directory to init, to `kubeadm upgrade apply` and to
// `kubeadm upgrade node` (on an HA control plane the last node's `upgrade
// node` re-renders the addon from the same template TestKubeadmPatch
// patches), and that directory's copy, deploy/kubeadm-patches, holds only a
// kube-proxy DaemonSet patch kubeadm recognises.
func TestUpgradeDocsPatchEveryRenderingCommand(t *testing.T) {
	doc := filepath.Join(deployDir(), "..", "docs", "kubeadm.md")
	type patches struct {
		Directory string `json:"directory"`
	}
	initDir, upgradeApply, upgradeNode := "", "", ""
	for _, block := range codeBlocks(t, doc, "yaml") {
		for _, d := range strings.Split(block, "\n---\n") {
			var head struct{ Kind string }
			if yaml.Unmarshal([]byte(d), &head) != nil {
				continue
			}
			switch head.Kind {
			case "InitConfiguration":
				var c struct {
					Patches patches `json:"patches"`
				}
				_ = yaml.Unmarshal([]byte(d), &c)
				initDir = c.Patches.Directory
			case "UpgradeConfiguration":
				var c struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
					Apply      struct {
						Patches patches `json:"patches"`
					} `json:"apply"`
					Node struct {
						Patches patches `json:"patches"`
					} `json:"node"`
				}
				if err := yaml.UnmarshalStrict([]byte(d), &c); err != nil {
					t.Errorf("docs/kubeadm.md UpgradeConfiguration: %v", err)
				}
				upgradeApply, upgradeNode = c.Apply.Patches.Directory, c.Node.Patches.Directory
			}
		}
	}
	if initDir == "" || upgradeApply != initDir || upgradeNode != initDir {
		t.Errorf("patches directories: init %q, UpgradeConfiguration apply %q, node %q; want the same, set", initDir, upgradeApply, upgradeNode)
	}
	commands := map[string]bool{"kubeadm upgrade apply": false, "kubeadm upgrade node": false}
	for _, block := range codeBlocks(t, doc, "sh") {
		for _, line := range strings.Split(block, "\n") {
			for cmd := range commands {
				if strings.HasPrefix(strings.TrimSpace(line), cmd) && strings.Contains(line, "--patches "+initDir) {
					commands[cmd] = true
				}
			}
		}
	}
	for cmd, found := range commands {
		if !found {
			t.Errorf("docs/kubeadm.md has no `%s --patches %s` command", cmd, initDir)
		}
	}
	entries, err := os.ReadDir(filepath.Join(deployDir(), "kubeadm-patches"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !kubeadmPatchFile.MatchString(entries[0].Name()) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("deploy/kubeadm-patches holds %v; want one kubeproxydaemonset patch (kubeadm applies every file it recognises)", names)
	}
}

// TestNoSuccessfulSyncAlertCoversNeverSynced: kubeproxy_sync_proxy_rules_last_timestamp_seconds
// has no series before a process's first successful sync, so "time() - it > 90"
// alone never fires for a proxier that restarted and has not synced since
// (crash-looping, or failing every sync from the start). The alert must
// also fire on a target that serves ipvsproxy_syncs_total (registered at 0
// from the start) without that timestamp.
func TestNoSuccessfulSyncAlertCoversNeverSynced(t *testing.T) {
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	data, err := os.ReadFile(filepath.Join(deployDir(), "monitoring", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &rule); err != nil {
		t.Fatal(err)
	}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "IPVSProxyNoSuccessfulSync" {
				continue
			}
			expr := strings.Join(strings.Fields(r.Expr), " ")
			if !strings.Contains(expr, "ipvsproxy_syncs_total") || !strings.Contains(expr, "unless on (instance) kubeproxy_sync_proxy_rules_last_timestamp_seconds") {
				t.Errorf("IPVSProxyNoSuccessfulSync never fires before a process's first successful sync: %s", r.Expr)
			}
			return
		}
	}
	t.Fatal("no alert IPVSProxyNoSuccessfulSync")
}
