package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Where kubeadm puts kube-proxy's files; the proxier under test reads them from there.
const (
	ConfigDir      = "/var/lib/kube-proxy"
	configFile     = ConfigDir + "/config.conf"
	kubeconfigFile = ConfigDir + "/kubeconfig.conf"
	metricsAddr    = "127.0.0.1:10249"
	// APIServerLocal is where the node's proxier finds the API server: a forwarder in
	// the node namespace (the serving certificate names 127.0.0.1).
	APIServerLocal = "127.0.0.1:6443"
)

// ProxySpec is one proxier under test.
type ProxySpec struct {
	// Name labels the runs: "ours-gate-off", "ours-gate-on", "upstream".
	Name   string
	Binary string
	// Gate is the IPVSImmediateTermination feature gate; nil writes no featureGates
	// (upstream kube-proxy rejects gates it does not know).
	Gate       *bool
	SyncPeriod time.Duration
	// Verbosity is the proxier's --v.
	Verbosity int
}

const configTemplate = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
clientConnection:
  kubeconfig: {{.Kubeconfig}}
clusterCIDR: {{.ClusterCIDR}}
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: {{.Metrics}}
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
ipvs:
  syncPeriod: {{.SyncPeriod}}
  minSyncPeriod: 0s
{{- if .Gate}}
featureGates:
  IPVSImmediateTermination: {{.GateValue}}
{{- end}}
`

// ConfigText renders the KubeProxyConfiguration the proxier is started with.
func (s ProxySpec) ConfigText() (string, error) {
	period := s.SyncPeriod
	if period == 0 {
		period = 30 * time.Second
	}
	data := map[string]any{
		"Kubeconfig": kubeconfigFile, "ClusterCIDR": ClusterCIDR, "Metrics": metricsAddr,
		"SyncPeriod": period.String(), "Gate": s.Gate != nil, "GateValue": s.Gate != nil && *s.Gate,
	}
	var b strings.Builder
	if err := template.Must(template.New("config").Parse(configTemplate)).Execute(&b, data); err != nil {
		return "", fmt.Errorf("render kube-proxy configuration: %w", err)
	}
	return b.String(), nil
}

// Proxier is a running kube-proxy process in the node namespace.
type Proxier struct {
	Spec    ProxySpec
	LogPath string
	Started time.Time
	node    *Node
	cmd     *exec.Cmd
	done    chan error
	log     *os.File
}

// WriteKubeconfig writes the proxier's kubeconfig: the guest kubeconfig with its server
// replaced by the forwarder's local address.
func WriteKubeconfig(guestKubeconfig string) error {
	b, err := os.ReadFile(guestKubeconfig)
	if err != nil {
		return fmt.Errorf("read kubeconfig %s: %w", guestKubeconfig, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "server:") {
			line = line[:strings.Index(line, "server:")] + "server: https://" + APIServerLocal
		}
		out = append(out, line)
	}
	if err := os.MkdirAll(ConfigDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", ConfigDir, err)
	}
	if err := os.WriteFile(kubeconfigFile, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", kubeconfigFile, err)
	}
	return nil
}

// StartProxier writes the configuration and starts the proxier the way kubeadm does
// (--config and --hostname-override), its output going to logPath.
func (n *Node) StartProxier(spec ProxySpec, logPath string) (*Proxier, error) {
	text, err := spec.ConfigText()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(configFile, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", configFile, err)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory for %s: %w", logPath, err)
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open proxier log %s: %w", logPath, err)
	}
	cmd := exec.Command(spec.Binary, "--config="+configFile, "--hostname-override="+n.Name, fmt.Sprintf("--v=%d", spec.Verbosity))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proxier{Spec: spec, LogPath: logPath, Started: time.Now(), node: n, cmd: cmd, done: make(chan error, 1), log: log}
	if err := StartIn(n.NS, cmd); err != nil {
		log.Close()
		return nil, fmt.Errorf("start proxier %s: %w", spec.Name, err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// Kill stops the proxier with SIGKILL (a crash: nothing is cleaned up).
func (p *Proxier) Kill() error { return p.stop(syscall.SIGKILL) }

// Stop stops the proxier with SIGTERM.
func (p *Proxier) Stop() error { return p.stop(syscall.SIGTERM) }

func (p *Proxier) stop(sig syscall.Signal) error {
	defer p.log.Close()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal proxier %s: %w", p.Spec.Name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("proxier %s ignored %s for 15s", p.Spec.Name, sig)
	}
}

// Exited reports whether the process has ended (and how).
func (p *Proxier) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// SyncStatus is what the proxier's metrics say about its IPv4 syncs.
type SyncStatus struct {
	Syncs       int     // kubeproxy_sync_proxy_rules_duration_seconds_count
	LastSync    float64 // kubeproxy_sync_proxy_rules_last_timestamp_seconds (unix seconds)
	DurationSum float64 // kubeproxy_sync_proxy_rules_duration_seconds_sum
}

// Metrics returns the proxier's /metrics page, read from inside the node
// namespace, after asking /healthz and /livez as the kubelet's probes do
// (their counters have a series only once asked).
func (p *Proxier) Metrics(ctx context.Context) (string, error) {
	for _, path := range []string{"/healthz", "/livez"} {
		_, _ = p.node.HTTPGet(ctx, "http://127.0.0.1:10256"+path) // a 503 is counted too; a missing counter shows in the scrape
	}
	return p.node.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
}

// Syncs reads the proxier's sync metrics from inside the node namespace.
func (p *Proxier) Syncs(ctx context.Context) (SyncStatus, error) {
	body, err := p.node.HTTPGet(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return SyncStatus{}, err
	}
	var s SyncStatus
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, `ip_family="IPv6"`) {
			continue
		}
		name, _, _ = strings.Cut(name, "{") // IPv4 (or unlabelled) series only
		v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		switch name {
		case "kubeproxy_sync_proxy_rules_duration_seconds_count":
			s.Syncs = int(v)
		case "kubeproxy_sync_proxy_rules_last_timestamp_seconds":
			s.LastSync = v
		case "kubeproxy_sync_proxy_rules_duration_seconds_sum":
			s.DurationSum = v
		}
	}
	return s, nil
}

// WaitSynced waits until the proxier reports at least min syncs.
func (p *Proxier) WaitSynced(ctx context.Context, min int, timeout time.Duration) (SyncStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := p.Syncs(ctx)
		if err == nil && s.Syncs >= min {
			return s, nil
		}
		if exited, werr := p.Exited(); exited {
			return s, fmt.Errorf("proxier %s exited: %v (log %s)", p.Spec.Name, werr, p.LogPath)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return s, fmt.Errorf("proxier %s: %d syncs after %s, want %d (last error %v; log %s)", p.Spec.Name, s.Syncs, timeout, min, err, p.LogPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPGet fetches url from inside the node namespace.
func (n *Node) HTTPGet(ctx context.Context, url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := InNetns(n.NS, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("get %s: status %s", url, resp.Status)
	}
	return string(b), nil
}
