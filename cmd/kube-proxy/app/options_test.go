package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// TestBadInput: every bad input ends in one line that names the file (or
// flag) and the field; nothing else (no usage, no stack).
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		args    []string
		config  string
		mention []string
		// forbid: words the line must not hold (a flag not given, the
		// decoder's internals).
		forbid []string
	}{
		{name: "missing file", args: []string{"--config=" + filepath.Join(dir, "nope.yaml")}, mention: []string{"nope.yaml", "no such file"}},
		{name: "unreadable file", args: []string{"--config=" + dir}, mention: []string{dir, "is a directory"}},
		{name: "malformed YAML", config: configHeader + "mode: : ipvs\n", mention: []string{"@config", "yaml"}},
		{name: "not YAML at all", config: "\x00\x01", mention: []string{"@config"}},
		{name: "missing kind", config: "mode: ipvs\n", mention: []string{"@config", "apiVersion and kind"}},
		{name: "wrong kind", config: "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n", mention: []string{"@config", "KubeletConfiguration"}},
		{name: "wrong version", config: "apiVersion: kubeproxy.config.k8s.io/v1beta9\nkind: KubeProxyConfiguration\n", mention: []string{"@config", "v1beta9", "not supported"},
			forbid: []string{"scheme", ".go:"}},
		{name: "the ConfigMap instead of its config.conf", config: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy}\ndata: {config.conf: x}\n",
			mention: []string{"@config", "ConfigMap", "config.conf"}, forbid: []string{"scheme", ".go:"}},
		{name: "bad duration", config: configHeader + "ipvs:\n  syncPeriod: soon\n", mention: []string{"@config", "ipvs.syncPeriod", "soon"}},
		{name: "string for number", config: configHeader + "iptables:\n  masqueradeBit: high\n", mention: []string{"@config", "iptables.masqueradeBit"}},
		{name: "object for string", config: configHeader + "ipvs:\n  scheduler: {a: b}\n", mention: []string{"@config", "ipvs.scheduler"}},
		{name: "list for object", config: configHeader + "ipvs: [1]\n", mention: []string{"@config", "ipvs"}},
		{name: "other mode in file", config: configHeader + "mode: iptables\n", mention: []string{"@config", "mode", "iptables", "only serves ipvs"}},
		{name: "other mode in flag", args: []string{"--proxy-mode=nftables"}, mention: []string{"--proxy-mode", "nftables", "only serves ipvs"}},
		{name: "bad exclude CIDR flag", args: []string{"--ipvs-exclude-cidrs=10.0.0.0/8,300.0.0.0/8"}, mention: []string{"--ipvs-exclude-cidrs", "300.0.0.0/8"}},
		{name: "bad nodeport flag", args: []string{"--nodeport-addresses=eth0"}, mention: []string{"--nodeport-addresses", "eth0"}},
		{name: "bad cluster CIDR flag", args: []string{"--cluster-cidr=10.0.0.0"}, mention: []string{"--cluster-cidr", "10.0.0.0"}},
		{name: "bad bind address flag", args: []string{"--bind-address=10.0.0.256"}, mention: []string{"--bind-address", "10.0.0.256"}},
		{name: "bad healthz address flag", args: []string{"--healthz-bind-address=10.0.0.1:http"}, mention: []string{"--healthz-bind-address"}},
		{name: "bad metrics address flag", args: []string{"--metrics-bind-address=host:10249"}, mention: []string{"--metrics-bind-address", "host"}},
		{name: "min sync above sync flag", args: []string{"--ipvs-sync-period=1s", "--ipvs-min-sync-period=2s"}, mention: []string{"--ipvs-sync-period"}},
		{name: "min sync flag alone above the default sync", args: []string{"--ipvs-min-sync-period=60s"},
			mention: []string{"--ipvs-min-sync-period: 1m0s", "30s", "default"}, forbid: []string{"--ipvs-sync-period:"}},
		{name: "unknown gate flag", args: []string{"--feature-gates=Bogus=true"}, mention: []string{"--feature-gates", "Bogus"}},
		{name: "empty hostname override", args: []string{"--hostname-override= "}, mention: []string{"--hostname-override"}},
		{name: "unknown flag", args: []string{"--ipvs-schedular=rr"}, mention: []string{"ipvs-schedular"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.config != "" {
				args = withConfigFile(t, []string{"--config=@config"}, tc.config)
			}
			cmd, err := NewCommand(t.Context(), &Environment{}, newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			cmd.SetArgs(args)
			err = cmd.Execute()
			if err == nil {
				t.Fatalf("%v accepted", args)
			}
			line := errorLine(err)
			for _, want := range tc.mention {
				if want == "@config" {
					want = strings.TrimPrefix(args[0], "--config=")
				}
				if !strings.Contains(line, want) {
					t.Errorf("error %q does not mention %q", line, want)
				}
			}
			for _, bad := range tc.forbid {
				if strings.Contains(line, bad) {
					t.Errorf("error %q mentions %q", line, bad)
				}
			}
			if strings.Contains(line, "goroutine") || strings.Contains(line, "Usage:") {
				t.Errorf("error %q is more than one line of explanation", line)
			}
		})
	}
}

// TestPrecedence covers what upstream parity cannot: the empty mode (ipvs
// here, iptables upstream) and kubeadm's invocation.
func TestPrecedence(t *testing.T) {
	kubeadmConfig := configHeader + `mode: ""
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
ipvs:
  syncPeriod: 0s
  minSyncPeriod: 0s
iptables:
  syncPeriod: 5s
featureGates:
  IPVSImmediateTermination: true
`
	cases := []struct {
		name   string
		args   []string
		config string
		check  func(t *testing.T, c *v1alpha1.KubeProxyConfiguration)
	}{
		{name: "kubeadm invocation", config: kubeadmConfig, args: []string{"--config=@config", "--hostname-override=Worker-1"},
			check: func(t *testing.T, c *v1alpha1.KubeProxyConfiguration) {
				want := map[string]any{"mode": c.Mode == modeIPVS, "hostname": c.HostnameOverride == "worker-1",
					"kubeconfig":              c.ClientConnection.Kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf",
					"ipvs sync from defaults": c.IPVS.SyncPeriod.Duration == 30*time.Second && c.IPVS.MinSyncPeriod.Duration == 0,
					"gate":                    c.FeatureGates["IPVSImmediateTermination"], "local mode": c.DetectLocalMode == localModeClusterCIDR}
				for what, ok := range want {
					if ok != true {
						t.Errorf("%s wrong in %+v", what, c)
					}
				}
			}},
		{name: "empty mode flag means ipvs", args: []string{"--proxy-mode=", "--ipvs-sync-period=7s"},
			check: func(t *testing.T, c *v1alpha1.KubeProxyConfiguration) {
				if c.Mode != modeIPVS || c.IPVS.SyncPeriod.Duration != 7*time.Second || c.IPVS.MinSyncPeriod.Duration != time.Second {
					t.Errorf("mode %q ipvs %+v", c.Mode, c.IPVS)
				}
			}},
		{name: "feature gates flag ignored with config", config: configHeader, args: []string{"--config=@config", "--feature-gates=Bogus=true"},
			check: func(t *testing.T, c *v1alpha1.KubeProxyConfiguration) {
				if len(c.FeatureGates) != 0 {
					t.Errorf("gates %v", c.FeatureGates)
				}
			}},
		{name: "master flag kept with config", config: configHeader, args: []string{"--config=@config", "--master=https://10.0.0.1:6443"},
			check: func(t *testing.T, c *v1alpha1.KubeProxyConfiguration) {}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := resolve(t, withConfigFile(t, tc.args, tc.config), newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, opts.config)
		})
	}
}

func TestMasterFlagSurvivesConfigFile(t *testing.T) {
	args := withConfigFile(t, []string{"--config=@config", "--master=https://10.0.0.1:6443"}, configHeader)
	opts, err := resolve(t, args, newTestGate(t))
	if err != nil || opts.master != "https://10.0.0.1:6443" {
		t.Fatalf("master %q, err %v", opts.master, err)
	}
}

func TestLenientDecodingKeepsKnownFields(t *testing.T) {
	cfg := mustResolve(t, withConfigFile(t, []string{"--config=@config"},
		configHeader+"ipvs:\n  schedular: wrr\n  scheduler: sh\nunknownTop: 1\n"))
	if cfg.IPVS.Scheduler != "sh" {
		t.Errorf("scheduler %q, want sh", cfg.IPVS.Scheduler)
	}
}

func TestWriteConfigRoundTrip(t *testing.T) {
	cfg := mustResolve(t, []string{"--ipvs-scheduler=wrr", "--cluster-cidr=10.0.0.0/8", "--hostname-override=n1"})
	path := filepath.Join(t.TempDir(), "written.yaml")
	if err := writeConfigFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(data), "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n") {
		t.Fatalf("written file: %v\n%s", err, data)
	}
	again := mustResolve(t, []string{"--config=" + path})
	again.TypeMeta = cfg.TypeMeta
	if diff := cmp.Diff(cfg, again); diff != "" {
		t.Errorf("round trip differs (-written +read):\n%s", diff)
	}
}
