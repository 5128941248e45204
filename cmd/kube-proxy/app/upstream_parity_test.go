package app

// Parity with upstream kube-proxy v1.37.2, which the tests (only) link:
// flags, defaulting, flag/file precedence and the validation verdicts.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
	upstreamapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconfigscheme "k8s.io/kubernetes/pkg/proxy/apis/config/scheme"
	upstreamv1alpha1 "k8s.io/kubernetes/pkg/proxy/apis/config/v1alpha1"
	"k8s.io/utils/ptr"
)

// flagSummary is what a user sees of a flag.
type flagSummary struct {
	Type, Default, Shorthand string
	Deprecated               bool
}

func summarize(fs *pflag.FlagSet) map[string]flagSummary {
	out := map[string]flagSummary{}
	fs.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "test.") { // go test's own flags
			return
		}
		out[f.Name] = flagSummary{f.Value.Type(), f.DefValue, f.Shorthand, f.Deprecated != ""}
	})
	return out
}

func TestFlagsMatchUpstream(t *testing.T) {
	upstreamCmd := upstreamapp.NewProxyCommand()
	upstream := pflag.NewFlagSet("upstream", pflag.ContinueOnError)
	upstream.AddFlagSet(upstreamCmd.Flags())
	logs.AddFlags(upstream)                               // what component-base/cli.Run adds
	upstream.AddFlag(pflag.CommandLine.Lookup("version")) // verflag's global flag

	cmd, err := NewCommand(context.Background(), &Environment{}, newTestGate(t))
	if err != nil {
		t.Fatal(err)
	}
	theirs, ours := summarize(upstream), summarize(cmd.Flags())
	if len(theirs) < 50 {
		t.Fatalf("only %d upstream flags found", len(theirs))
	}
	if diff := cmp.Diff(theirs, ours); diff != "" {
		t.Errorf("flags differ from upstream (-upstream +ours):\n%s", diff)
	}
}

// upstreamResolve runs upstream's option handling on args and returns the
// configuration upstream would run with, read back from --write-config-to.
func upstreamResolve(t *testing.T, args []string) (*kubeproxyconfig.KubeProxyConfiguration, error) {
	t.Helper()
	opts := upstreamapp.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := opts.Complete(fs); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.WriteConfigTo = filepath.Join(t.TempDir(), "upstream.yaml")
	if err := opts.Run(context.Background()); err != nil {
		t.Fatalf("upstream write config: %v", err)
	}
	return decodeWithUpstream(t, opts.WriteConfigTo), nil
}

// decodeWithUpstream reads a written configuration with upstream's strict
// decoder (conversion to the internal type included).
func decodeWithUpstream(t *testing.T, path string) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj, _, err := proxyconfigscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		t.Fatalf("upstream cannot decode %s: %v\n%s", path, err, data)
	}
	return obj.(*kubeproxyconfig.KubeProxyConfiguration)
}

// oursResolved resolves args with our code, writes the result with our
// --write-config-to and reads it back with upstream's decoder.
func oursResolved(t *testing.T, args []string) *kubeproxyconfig.KubeProxyConfiguration {
	t.Helper()
	cfg := mustResolve(t, args)
	path := filepath.Join(t.TempDir(), "ours.yaml")
	if err := writeConfigFile(path, cfg); err != nil {
		t.Fatal(err)
	}
	return decodeWithUpstream(t, path)
}

func TestPrecedenceMatchesUpstream(t *testing.T) {
	fileIPVS := configHeader + `mode: ipvs
bindAddress: 10.1.1.1
hostnameOverride: from-file
clusterCIDR: 10.244.0.0/16
ipvs:
  syncPeriod: 20s
  minSyncPeriod: 3s
  scheduler: wrr
  excludeCIDRs: [10.9.0.0/16]
  tcpTimeout: 7s
iptables:
  masqueradeAll: true
logging:
  vmodule: [{filePattern: proxier, verbosity: 4}]
healthzBindAddress: 0.0.0.0:20256
nodePortAddresses: [primary]
`
	cases := []struct {
		name   string
		args   []string
		config string
	}{
		{name: "defaults", args: []string{"--proxy-mode=ipvs"}},
		{name: "ipvs flags", args: []string{"--proxy-mode=ipvs", "--ipvs-sync-period=10s", "--ipvs-min-sync-period=2s",
			"--ipvs-scheduler=sh", "--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/64", "--ipvs-strict-arp", "--ipvs-tcp-timeout=5s",
			"--ipvs-tcpfin-timeout=6s", "--ipvs-udp-timeout=7s", "--masquerade-all", "--iptables-masquerade-bit=15"}},
		{name: "address flags", args: []string{"--proxy-mode=ipvs", "--bind-address=10.0.0.5", "--healthz-bind-address=0.0.0.0:1234",
			"--metrics-bind-address=10.0.0.5", "--nodeport-addresses=primary,10.0.0.0/8", "--bind-address-hard-fail"}},
		{name: "deprecated ports", args: []string{"--proxy-mode=ipvs", "--healthz-port=0", "--metrics-port=12345"}},
		{name: "local detection", args: []string{"--proxy-mode=ipvs", "--detect-local-mode=BridgeInterface", "--pod-bridge-interface=cbr0",
			"--cluster-cidr=10.244.0.0/16,fd00:10::/56"}},
		{name: "client and conntrack", args: []string{"--proxy-mode=ipvs", "--kubeconfig=/k", "--kube-api-qps=50", "--kube-api-burst=100",
			"--kube-api-content-type=application/json", "--conntrack-max-per-core=0", "--conntrack-min=5", "--conntrack-tcp-be-liberal",
			"--conntrack-udp-timeout=9s", "--config-sync-period=1m", "--oom-score-adj=-500", "--profiling"}},
		{name: "iptables flags ignored in ipvs mode", args: []string{"--proxy-mode=ipvs", "--iptables-sync-period=5s", "--iptables-min-sync-period=2s"}},
		{name: "logging and hostname flags", args: []string{"--proxy-mode=ipvs", "-v=4", "--vmodule=a=2", "--hostname-override=Node-1"}},
		{name: "config file", args: []string{"--config=@config"}, config: fileIPVS},
		{name: "config file wins over flags", config: fileIPVS, args: []string{"--config=@config", "--ipvs-sync-period=99s",
			"--bind-address=10.2.2.2", "--cluster-cidr=10.5.0.0/16", "--masquerade-all=false", "--healthz-port=0", "--proxy-mode=ipvs"}},
		{name: "flags that beat the file", config: fileIPVS, args: []string{"--config=@config", "--hostname-override=NODE-B", "-v=5", "--vmodule=b=3"}},
		{name: "misspelled field (lenient)", config: configHeader + "mode: ipvs\nipvs:\n  schedular: rr\n", args: []string{"--config=@config"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := withConfigFile(t, tc.args, tc.config)
			want, err := upstreamResolve(t, args)
			if err != nil {
				t.Fatalf("upstream rejects %v: %v", args, err)
			}
			got := oursResolved(t, args)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("resolved configuration differs (-upstream +ours):\n%s", diff)
			}
		})
	}
}

func TestDefaultsMatchUpstream(t *testing.T) {
	cases := map[string]*v1alpha1.KubeProxyConfiguration{
		"empty":                  {},
		"IPv6 bind address":      {BindAddress: "::"},
		"IPv6 node address":      {BindAddress: "fd00::1"},
		"addresses without port": {HealthzBindAddress: "10.0.0.1", MetricsBindAddress: "::1"},
		"explicit zero pointers": {OOMScoreAdj: ptr.To[int32](0), Conntrack: v1alpha1.KubeProxyConntrackConfiguration{MaxPerCore: ptr.To[int32](0), Min: ptr.To[int32](0),
			TCPEstablishedTimeout: &metav1.Duration{}, TCPCloseWaitTimeout: &metav1.Duration{}}},
		"logging set": {Logging: mustLogging(t, `{"format":"json","verbosity":3,"flushFrequency":"10s"}`)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) { compareDefaults(t, in) })
	}
}

// TestDefaultsMatchUpstreamPerField clears each field of a fully defaulted
// configuration in turn and checks that both fill it in the same way.
func TestDefaultsMatchUpstreamPerField(t *testing.T) {
	full := &v1alpha1.KubeProxyConfiguration{}
	upstreamv1alpha1.SetObjectDefaults_KubeProxyConfiguration(full)
	for _, path := range leafFields(reflect.TypeFor[v1alpha1.KubeProxyConfiguration](), "") {
		t.Run(path, func(t *testing.T) {
			in := full.DeepCopy()
			clearField(reflect.ValueOf(in).Elem(), strings.Split(path, "."))
			compareDefaults(t, in)
		})
	}
}

func mustLogging(t *testing.T, jsonText string) logsapi.LoggingConfiguration {
	t.Helper()
	var c logsapi.LoggingConfiguration
	if err := json.Unmarshal([]byte(jsonText), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func compareDefaults(t *testing.T, in *v1alpha1.KubeProxyConfiguration) {
	t.Helper()
	theirs, ours := in.DeepCopy(), in.DeepCopy()
	upstreamv1alpha1.SetObjectDefaults_KubeProxyConfiguration(theirs)
	setDefaults(ours)
	if diff := cmp.Diff(theirs, ours); diff != "" {
		t.Errorf("defaults differ (-upstream +ours):\n%s", diff)
	}
}

// leafFields lists the dotted Go field paths of every non-struct field
// (structs with unexported fields, like durations, count as leaves).
func leafFields(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[metav1.Duration]() && ft != reflect.TypeFor[metav1.TypeMeta]() {
			out = append(out, leafFields(ft, prefix+f.Name+".")...)
			continue
		}
		out = append(out, prefix+f.Name)
	}
	sort.Strings(out)
	return out
}

func clearField(v reflect.Value, path []string) {
	f := v.FieldByName(path[0])
	if len(path) == 1 {
		f.Set(reflect.Zero(f.Type()))
		return
	}
	clearField(f, path[1:])
}

func TestValidationMatchesUpstream(t *testing.T) {
	cases := []struct {
		name, config string
		valid        bool
		// oursOnly: upstream's gate is process-wide and keeps even rejected
		// settings, so unknown gates are not given to upstream.
		oursOnly bool
		// mention is what our error must name besides the file.
		mention string
	}{
		{name: "dual-stack cluster CIDRs", valid: true, config: "clusterCIDR: 10.0.0.0/8,fd00::/48\n"},
		{name: "every keyword and a CIDR", valid: true, config: "nodePortAddresses: [primary, localhost, all, 10.0.0.0/8]\n"},
		{name: "bridge interface", valid: true, config: "detectLocalMode: BridgeInterface\ndetectLocal:\n  bridgeInterface: cbr0\n"},
		{name: "leading zeros in CIDR", valid: true, config: "ipvs:\n  excludeCIDRs: [010.0.0.0/8]\n"},
		{name: "exclude CIDR", mention: "ipvs.excludeCIDRs[0]", config: "ipvs:\n  excludeCIDRs: [10.0.0/8]\n"},
		{name: "bind address", mention: "bindAddress", config: "bindAddress: 10.0.0\n"},
		{name: "healthz port", mention: "healthzBindAddress", config: "healthzBindAddress: 1.2.3.4:99999\n"},
		{name: "metrics host", mention: "metricsBindAddress", config: "metricsBindAddress: localhost:10249\n"},
		{name: "nodeport CIDR", mention: "nodePortAddresses[1]", config: "nodePortAddresses: [primary, 10.0.0.0/33]\n"},
		{name: "nodeport duplicate keyword", mention: "nodePortAddresses[1]", config: "nodePortAddresses: [all, all]\n"},
		{name: "detect local mode", mention: "detectLocalMode", config: "detectLocalMode: PodCIDR\n"},
		{name: "bridge without name", mention: "detectLocal.bridgeInterface", config: "detectLocalMode: BridgeInterface\n"},
		{name: "prefix without name", mention: "detectLocal.interfaceNamePrefix", config: "detectLocalMode: InterfaceNamePrefix\n"},
		{name: "three cluster CIDRs", mention: "clusterCIDR", config: "clusterCIDR: 10.0.0.0/8,fd00::/48,11.0.0.0/8\n"},
		{name: "two IPv4 cluster CIDRs", mention: "clusterCIDR", config: "clusterCIDR: 10.0.0.0/8,11.0.0.0/8\n"},
		{name: "bad cluster CIDR", mention: "clusterCIDR[0]", config: "clusterCIDR: 10.0.0.0/40\n"},
		{name: "masquerade bit", mention: "iptables.masqueradeBit", config: "iptables:\n  masqueradeBit: 32\n"},
		{name: "oom score", mention: "oomScoreAdj", config: "oomScoreAdj: 1001\n"},
		{name: "conntrack min", mention: "conntrack.min", config: "conntrack:\n  min: -1\n"},
		{name: "conntrack timeout", mention: "conntrack.udpTimeout", config: "conntrack:\n  udpTimeout: -1s\n"},
		{name: "ipvs timeout", mention: "ipvs.tcpFinTimeout", config: "ipvs:\n  tcpFinTimeout: -1s\n"},
		{name: "ipvs negative sync", mention: "ipvs.syncPeriod", config: "ipvs:\n  syncPeriod: -1s\n"},
		{name: "ipvs min above sync", mention: "ipvs.syncPeriod", config: "ipvs:\n  syncPeriod: 10s\n  minSyncPeriod: 20s\n"},
		{name: "config sync period", mention: "configSyncPeriod", config: "configSyncPeriod: -1s\n"},
		{name: "burst", mention: "clientConnection.burst", config: "clientConnection:\n  burst: -1\n"},
		{name: "hidden metrics version", mention: "showHiddenMetricsForVersion", config: "showHiddenMetricsForVersion: \"1.1\"\n"},
		{name: "unknown feature gate", oursOnly: true, mention: "featureGates", config: "featureGates:\n  NoSuchGate: true\n"},
		{name: "logging format", mention: "logging.format", config: "logging:\n  format: xml\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := withConfigFile(t, []string{"--config=@config"}, configHeader+"mode: ipvs\n"+tc.config)
			upstreamErr := errors.New("not asked")
			if !tc.oursOnly {
				_, upstreamErr = upstreamResolve(t, args)
			}
			_, ourErr := resolve(t, args, newTestGate(t))
			if (upstreamErr == nil) != tc.valid || (ourErr == nil) != tc.valid {
				t.Fatalf("want valid=%v; upstream error: %v; our error: %v", tc.valid, upstreamErr, ourErr)
			}
			if ourErr == nil {
				return
			}
			msg := ourErr.Error()
			if !strings.Contains(msg, strings.TrimPrefix(args[0], "--config=")) || !strings.Contains(msg, tc.mention) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming the file and %q", msg, tc.mention)
			}
		})
	}
}
