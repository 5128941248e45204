// Package kernel measures a kube-proxy (ours, or upstream's in IPVS or
// nftables mode) on the real kernel of the test VM against a real API
// server: time to program a cluster, full sync time, time from an
// EndpointSlice update to the removed endpoint being gone from the kernel
// (IPVS, or upstream's nftables table), and CPU used while idle.
package kernel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

const (
	// NodeName is the node the proxier runs as (the loader creates it).
	NodeName    = "node-a"
	configPath  = "/var/lib/kube-proxy/config.conf"
	metricsAddr = "127.0.0.1:10249"
	// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times.
	clockTicks = 100
)

// config is the KubeProxyConfiguration every proxier runs with: IPVS mode
// (nftables for upstream's nftables side), upstream's default periods (sync
// every 30 s, no minimum interval, as kubeadm leaves them), conntrack
// sysctls left alone. The mode's own section carries the periods.
const config = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: %[1]s
clientConnection:
  kubeconfig: %[2]s
clusterCIDR: 10.128.0.0/9
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: ` + metricsAddr + `
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
%[1]s:
  syncPeriod: %[3]s
  minSyncPeriod: 0s
enableProfiling: %[4]t
`

// modeOf is the proxy mode a side runs in.
func modeOf(side string) string {
	if side == results.UpstreamNFTables {
		return "nftables"
	}
	return "ipvs"
}

// proxierConfig is the configuration file for a side.
func proxierConfig(side, kubeconfig string, syncPeriod time.Duration, profiling bool) []byte {
	return fmt.Appendf(nil, config, modeOf(side), kubeconfig, syncPeriod, profiling)
}

// proxier is a running kube-proxy process.
type proxier struct {
	started time.Time
	cmd     *exec.Cmd
	done    chan error
	log     *os.File
}

// startProxier writes the configuration file and starts binary with it.
func startProxier(binary string, config []byte, logPath string, verbosity int) (*proxier, error) {
	if err := os.MkdirAll("/var/lib/kube-proxy", 0o755); err != nil {
		return nil, fmt.Errorf("create /var/lib/kube-proxy: %w", err)
	}
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", configPath, err)
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create proxier log %s: %w", logPath, err)
	}
	cmd := exec.Command(binary, "--config="+configPath, "--hostname-override="+NodeName, fmt.Sprintf("--v=%d", verbosity))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &proxier{started: time.Now(), cmd: cmd, done: make(chan error, 1), log: log}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// exited returns the process's exit error once it has ended.
func (p *proxier) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// stop sends SIGTERM and waits up to 15 s, then kills.
func (p *proxier) stop() error {
	defer p.log.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal proxier: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("proxier ignored SIGTERM for 15 s")
	}
}

// cpuSeconds is the user+system CPU time the process has used itself, and
// that of its children it has waited for (iptables, ipset: upstream's
// proxier runs one per set and rule check).
func (p *proxier) cpuSeconds() (own, children float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read proxier CPU time: %w", err)
	}
	// Fields after the parenthesized command name; utime, stime, cutime
	// and cstime are fields 14 to 17 of the whole line.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks [4]float64
	for i := range ticks {
		if ticks[i], err = strconv.ParseFloat(fields[11+i], 64); err != nil {
			return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", p.cmd.Process.Pid, err)
		}
	}
	return (ticks[0] + ticks[1]) / clockTicks, (ticks[2] + ticks[3]) / clockTicks, nil
}

// peakRSS is the process's resident set high-water mark (VmHWM).
func (p *proxier) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read proxier status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in the proxier's status")
}

// snapshot is one scrape of the proxier's metrics: value by series
// ("name{labels}" as exposed).
type snapshot map[string]float64

// histogram is a histogram's count and sum.
type histogram struct {
	count int
	sum   float64
}

func (s snapshot) histogram(name, family string) histogram {
	labels := `{ip_family="` + family + `"}`
	return histogram{count: int(s[name+"_count"+labels]), sum: s[name+"_sum"+labels]}
}

func (s snapshot) gauge(name, family string) float64 {
	return s[name+`{ip_family="`+family+`"}`]
}

// families are the IP families the proxier reports syncs for.
func (s snapshot) families() []string {
	var out []string
	for _, f := range []string{"IPv4", "IPv6"} {
		if _, ok := s[syncsMetric+"_count"+`{ip_family="`+f+`"}`]; ok {
			out = append(out, f)
		}
	}
	return out
}

func (h histogram) minus(o histogram) histogram { return histogram{h.count - o.count, h.sum - o.sum} }

func (h histogram) mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

// scrape reads the proxier's metrics.
func scrape(ctx context.Context) (snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("get proxier metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (snapshot, error) {
	out := snapshot{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// cpuProfile fetches a CPU profile of the proxier over d (enableProfiling).
func cpuProfile(ctx context.Context, d time.Duration) ([]byte, error) {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", metricsAddr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("get proxier CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get proxier CPU profile: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}
