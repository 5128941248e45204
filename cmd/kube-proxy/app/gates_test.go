package app

import (
	"net"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
)

func TestFeatureGates(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		config    string
		wantErr   string
		immediate bool
	}{
		{name: "default off", args: nil},
		{name: "ours from flag", args: []string{"--feature-gates=IPVSImmediateTermination=true"}, immediate: true},
		{name: "ours from kubeadm config", args: []string{"--config=@config"}, config: configHeader + "featureGates:\n  IPVSImmediateTermination: true\n", immediate: true},
		{name: "upstream gates", args: []string{"--feature-gates=KubeProxyIPVS=false,LoggingBetaOptions=true,NativeHistograms=true"}},
		{name: "unknown in flag", args: []string{"--feature-gates=IPVSImmediateTerminaton=true"}, wantErr: "--feature-gates: unrecognized feature gate: IPVSImmediateTerminaton"},
		{name: "unknown in file", args: []string{"--config=@config"}, config: configHeader + "featureGates:\n  Nope: false\n", wantErr: "featureGates: unrecognized feature gate: Nope"},
		{name: "locked gate", args: []string{"--feature-gates=MultiCIDRServiceAllocator=false"}, wantErr: "MultiCIDRServiceAllocator"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gate := newTestGate(t)
			opts, err := resolve(t, withConfigFile(t, tc.args, tc.config), gate)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := proxierConfig(opts.config, v1.IPv4Protocol, "n", map[v1.IPFamily]net.IP{}, nil, gate)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ImmediateTermination != tc.immediate {
				t.Errorf("ImmediateTermination %v, want %v", cfg.ImmediateTermination, tc.immediate)
			}
		})
	}
}

// TestEveryUpstreamGateAccepted sets each gate upstream kube-proxy knows to
// its default: all of them must be accepted.
func TestEveryUpstreamGateAccepted(t *testing.T) {
	gate := newTestGate(t)
	upstream := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	all := map[string]bool{}
	for name, spec := range upstream.GetAll() {
		all[string(name)] = spec.Default
	}
	if len(all) < 100 {
		t.Fatalf("only %d upstream gates", len(all))
	}
	if err := gate.SetFromMap(all); err != nil {
		t.Fatal(err)
	}
	if spec := gate.GetAll()[IPVSImmediateTermination]; spec.PreRelease != featuregate.Alpha || spec.Default {
		t.Errorf("%s: %+v, want alpha, off by default", IPVSImmediateTermination, spec)
	}
}
