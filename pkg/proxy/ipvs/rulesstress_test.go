package ipvs

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// With SyncLoop's runner going (syncPeriod 30 ms), partial writes, their
// read-backs, audits and full syncs race with someone else changing our
// chains and the jumps to them; once that stops, the rules converge to
// what a fresh proxier writes within a few periods. Run with -race.
func TestRulesConvergeUnderConcurrentChanges(t *testing.T) {
	k := newKernel(t)
	cfg := testConfig(v1.IPv4Protocol)
	cfg.SyncPeriod = 30 * time.Millisecond
	p := newTestProxier(t, k, cfg)
	p.looping.Store(true)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); p.runLoop(stop) }()
	t.Cleanup(func() { // nothing may call Run once the loop is gone: it panics
		p.initialized.Store(false) // syncs from now on do nothing, start no audit
		p.mu.Lock()
		fired := p.fullSyncTimer != nil && !p.fullSyncTimer.Stop()
		p.mu.Unlock()
		if fired {
			time.Sleep(50 * time.Millisecond) // its Run, into the loop
		}
		waitAudit(t, p)
		close(stop)
		<-done
	})
	base := svc("a", "10.96.0.1")
	optional := []*v1.Service{
		nodePortSvc("b", "10.96.0.2", 30081),
		svc("c", "10.96.0.3", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.1"} }),
		svc("d", "10.96.0.4", func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30084
			s.Spec.LoadBalancerSourceRanges = []string{"192.168.0.0/16"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.5"}}
		}),
	}
	p.OnServiceAdd(base)
	p.Sync()
	present := make([]bool, len(optional))
	meddles := []func(){
		func() { _ = k.ipt4.Restore("nat", []byte(":"+chainServices+" - [0:0]\n")) },
		func() { _ = k.ipt4.Restore("filter", []byte(":"+chainForward+" - [0:0]\n")) },
		func() { _ = k.ipt4.EnsureJump("nat", chainNodePort, "ACCEPT", "-s", "198.51.100.7/32") },
		func() { _ = k.ipt4.EnsureJump("filter", chainIPVSFilter, "ACCEPT", "-s", "198.51.100.7/32") },
		func() {
			_ = k.ipt4.DeleteJump("nat", "OUTPUT", chainServices, "-m", "comment", "--comment", "kubernetes service portals")
		},
		func() {
			_ = k.ipt4.DeleteJump("filter", "INPUT", chainNodePort, "-m", "comment", "--comment", "kubernetes health check rules")
		},
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if rng.IntN(3) == 0 {
			meddles[rng.IntN(len(meddles))]()
		} else {
			i := rng.IntN(len(optional))
			if present[i] {
				p.OnServiceDelete(optional[i])
			} else {
				p.OnServiceAdd(optional[i])
			}
			present[i] = !present[i]
			p.Sync()
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
	}
	final := []*v1.Service{base}
	for i, s := range optional {
		if present[i] {
			final = append(final, s)
		}
	}
	want := sortedLines(dumpOf(t, final...))
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = sortedLines(k.ipt4.Dump()); got == want {
			return
		}
	}
	wantDump(t, "iptables 5 s (166 sync periods) after the last change", got, want)
}

// sortedLines sorts a dump's lines: a jump ensured again goes first in its
// chain, wherever a fresh proxier put it.
func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
