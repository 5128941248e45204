package ipvs

import (
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// iptablesModeLeftovers writes what upstream's iptables mode leaves on a
// node (one Service with one endpoint, one Service without endpoints).
func iptablesModeLeftovers(t *testing.T, ipt iptables.Interface) {
	t.Helper()
	must(t, ipt.Restore(iptables.TableNAT, []byte(`:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-ABC - [0:0]
:KUBE-SEP-DEF - [0:0]
:KUBE-EXT-ABC - [0:0]
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "ns/a cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports" -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-EXT-ABC
-A KUBE-EXT-ABC -j KUBE-MARK-MASQ
-A KUBE-EXT-ABC -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -j KUBE-SEP-DEF
-A KUBE-SEP-DEF -s 10.244.1.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-DEF -p tcp -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -j MASQUERADE
`)))
	must(t, ipt.Restore(iptables.TableFilter, []byte(`:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -d 10.96.0.2/32 -p tcp -m comment --comment "ns/empty has no endpoints" -j REJECT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
`)))
	for _, j := range iptablesModeJumps {
		must(t, ipt.EnsureJump(j.table, j.from, j.to, append(append([]string{}, j.match...), "-m", "comment", "--comment", j.comment)...))
	}
}

// TestCleanupRemovesIPTablesModeLeftovers: --cleanup removes upstream's
// iptables-mode rules too (its jumps, chains and per-Service chains), as
// upstream's --cleanup does, next to ours.
func TestCleanupRemovesIPTablesModeLeftovers(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	syncOK(t, p)
	iptablesModeLeftovers(t, k.ipt4)
	must(t, CleanupLeftovers(t.Context(), k.deps(v1.IPv4Protocol)))
	if d := k.ipt4.Dump(); strings.Contains(d, "KUBE-") {
		t.Errorf("iptables left:\n%s", d)
	}
}

// TestCleanupAttemptsEveryStep: a failing step (no IPVS module, an IPVS
// flush or an iptables error) does not stop the later ones, and each
// failure is named in the error.
func TestCleanupAttemptsEveryStep(t *testing.T) {
	cases := []struct {
		name    string
		noIPVS  bool
		failOn  string // the iptables Fake operation that fails
		wantErr []string
	}{
		{name: "no IPVS module", noIPVS: true, wantErr: []string{"flush IPVS table", "not available"}},
		{name: "nat chains fail", failOn: "DeleteChains nat", wantErr: []string{"delete nat chains"}},
		{name: "jumps fail", failOn: "DeleteJump", wantErr: []string{"delete iptables jumps"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
			p.OnServiceAdd(svc("a", "10.96.0.1"))
			syncOK(t, p)
			deps := k.deps(v1.IPv4Protocol)
			if tc.noIPVS {
				deps.IPVS = nil
			}
			injected := errors.New("injected failure")
			k.ipt4.Inject = func(op, object string) error {
				if tc.failOn != "" && strings.HasPrefix(op+" "+object, tc.failOn) {
					return injected
				}
				return nil
			}
			err := CleanupLeftovers(t.Context(), deps)
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not name %q", err, want)
				}
			}
			if d := k.ipset.Dump(); d != "" {
				t.Errorf("ipsets left after the failure (the last step did not run):\n%s", d)
			}
			if d := k.netdev.Dump(); strings.Contains(d, DummyDevice) {
				t.Errorf("dummy device left:\n%s", d)
			}
			if !tc.noIPVS && ipvsDump(k) != "" {
				t.Errorf("IPVS left:\n%s", ipvsDump(k))
			}
		})
	}
}

// TestCleanupEachStepFailing: each step failing in turn (and all at once)
// leaves the others done, and the error names exactly the failed steps
// (and the chain deletions when the jumps to them stay).
func TestCleanupEachStepFailing(t *testing.T) {
	steps := []string{"flush IPVS table", "delete dummy device " + DummyDevice, "delete iptables jumps",
		"delete nat chains", "delete filter chains", "destroy ipsets"}
	injected := errors.New("injected failure")
	failing := func(fail map[string]bool, step string) func(string, string) error {
		return func(string, string) error {
			if fail[step] {
				return injected
			}
			return nil
		}
	}
	for i := 0; i <= len(steps); i++ {
		fail := map[string]bool{}
		name := "all"
		if i < len(steps) {
			fail[steps[i]], name = true, steps[i]
		} else {
			for _, s := range steps {
				fail[s] = true
			}
		}
		t.Run(name, func(t *testing.T) {
			k := newKernel(t)
			p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
			p.OnServiceAdd(svc("a", "10.96.0.1"))
			syncOK(t, p)
			k.ipvs.Inject = failing(fail, steps[0])
			k.netdev.Inject = failing(fail, steps[1])
			k.ipt4.Inject = func(op, object string) error {
				switch {
				case op == "DeleteJump" && fail[steps[2]],
					op == "DeleteChains" && strings.HasPrefix(object, "nat ") && fail[steps[3]],
					op == "DeleteChains" && strings.HasPrefix(object, "filter ") && fail[steps[4]]:
					return injected
				}
				return nil
			}
			k.ipset.Inject = failing(fail, steps[5])
			err := CleanupLeftovers(t.Context(), k.deps(v1.IPv4Protocol))
			for _, s := range steps {
				named := err != nil && strings.Contains(err.Error(), s+": ")
				// chains still jumped to cannot be deleted (the kernel's EBUSY)
				cascade := fail[steps[2]] && strings.HasSuffix(s, " chains")
				if named != fail[s] && !cascade {
					t.Errorf("step %q failed %v, named in the error %v: %v", s, fail[s], named, err)
				}
			}
			if !fail[steps[0]] && ipvsDump(k) != "" {
				t.Errorf("IPVS left:\n%s", ipvsDump(k))
			}
			if d := k.netdev.Dump(); !fail[steps[1]] && strings.Contains(d, DummyDevice) {
				t.Errorf("dummy device left:\n%s", d)
			}
			if d := k.ipt4.Dump(); !fail[steps[2]] && !fail[steps[3]] && !fail[steps[4]] && strings.Contains(d, "KUBE-") {
				t.Errorf("iptables left:\n%s", d)
			}
			if d := k.ipset.Dump(); !fail[steps[5]] && d != "" {
				t.Errorf("ipsets left:\n%s", d)
			}
		})
	}
}
