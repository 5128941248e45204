package app

import (
	"net"
	"testing"

	v1 "k8s.io/api/core/v1"

	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

// The proxier's unit tests set FinishGrace themselves, and the e2e rolling update on
// the legacy profile cannot tell a proxier without the grace from one with it (its
// cuts begin after the removal was written, and are reported as "pinned"): only this
// test notices a binary that runs with no grace.
func TestProxierConfigKeepsTheFinishGrace(t *testing.T) {
	gate := newTestGate(t)
	opts, err := resolve(t, withConfigFile(t, []string{"--feature-gates=IPVSImmediateTermination=true"}, ""), gate)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := proxierConfig(opts.config, v1.IPv4Protocol, "n", map[v1.IPFamily]net.IP{}, nil, gate)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FinishGrace != ipvsproxy.DefaultFinishGrace {
		t.Errorf("FinishGrace %v, want %v", cfg.FinishGrace, ipvsproxy.DefaultFinishGrace)
	}
}
