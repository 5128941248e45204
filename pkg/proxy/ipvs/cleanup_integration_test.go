//go:build integration

package ipvs

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// TestKernelCleanupRemovesIPTablesModeLeftovers: with real iptables, the
// rules upstream's iptables mode leaves (jumps with their conntrack
// matches, chains referring to each other) go together with ours.
func TestKernelCleanupRemovesIPTablesModeLeftovers(t *testing.T) {
	n := newNode(t)
	p := newRealProxier(t, n, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(webService())
	syncOK(t, p)
	iptablesModeLeftovers(t, n.deps.IPTables)
	before, _ := exec.Command("iptables-save").CombinedOutput()
	if !strings.Contains(string(before), "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES") {
		t.Fatalf("the iptables-mode jumps were not written as upstream writes them:\n%s", before)
	}
	must(t, CleanupLeftovers(context.Background(), n.deps))
	if out, _ := exec.Command("iptables-save").CombinedOutput(); strings.Contains(string(out), "KUBE-") {
		t.Errorf("iptables left:\n%s", out)
	}
}
