package ipvs

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// A full sync rewrites our chains only when our part of a table changed
// since our last write (one iptables-save per table otherwise), and then
// repairs them and the jumps to them.
func TestFullSyncRewritesRulesOnlyWhenChanged(t *testing.T) {
	for _, tc := range []struct {
		name string
		// meddle changes the tables behind the proxier's back.
		meddle func(t *testing.T, k *kernel)
		writes bool
	}{
		{name: "nothing changed", meddle: func(*testing.T, *kernel) {}},
		{name: "our chain flushed", writes: true, meddle: func(t *testing.T, k *kernel) {
			must(t, k.ipt4.Restore("nat", []byte(":"+chainServices+" - [0:0]\n")))
		}},
		{name: "a jump deleted", writes: true, meddle: func(t *testing.T, k *kernel) {
			must(t, k.ipt4.DeleteJump("filter", "INPUT", chainIPVSFilter, "-m", "comment", "--comment", "kubernetes ipvs access filter"))
		}},
		{name: "a rule added to our chain", writes: true, meddle: func(t *testing.T, k *kernel) {
			must(t, k.ipt4.Restore("filter", []byte(":"+chainForward+" - [0:0]\n-A "+chainForward+" -j ACCEPT\n")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
			clusterAB(p)
			syncOK(t, p)
			want := k.ipt4.Dump()
			tc.meddle(t, k)
			clear(k.ipt4.Calls)
			passSyncPeriod(p)
			syncOK(t, p)
			wantDump(t, "iptables", k.ipt4.Dump(), want)
			writes := k.ipt4.Calls["Restore"] + k.ipt4.Calls["EnsureJump"]
			if wrote := writes > 0; wrote != tc.writes {
				t.Errorf("full sync: %d writes (%v), want writes: %v", writes, k.ipt4.Calls, tc.writes)
			}
			if k.ipt4.Calls["Save"] != 2 && !tc.writes {
				t.Errorf("full sync read iptables %d times, want once per table (%v)", k.ipt4.Calls["Save"], k.ipt4.Calls)
			}
		})
	}
}

// A partial sync's write is not recorded (it ensures no jumps): the next
// full sync writes again, and a jump deleted meanwhile comes back.
func TestFullSyncAfterPartialRuleWriteRepairsJumps(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	syncOK(t, p)
	want := func() string {
		fresh := newKernel(t)
		q := newTestProxier(t, fresh, testConfig(v1.IPv4Protocol))
		q.OnServiceAdd(svc("a", "10.96.0.1"))
		q.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081))
		syncOK(t, q)
		return fresh.ipt4.Dump()
	}()
	must(t, k.ipt4.DeleteJump("nat", "OUTPUT", chainServices, "-m", "comment", "--comment", "kubernetes service portals"))
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // a node port set jump appears: a partial write
	syncOK(t, p)
	passSyncPeriod(p)
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), want)
}

func TestOurRules(t *testing.T) {
	saved := `*nat
:PREROUTING ACCEPT [10:600]
:OUTPUT ACCEPT [3:180]
:KUBE-SERVICES - [0:0]
:OTHER - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j OTHER
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A OTHER -j RETURN
COMMIT
`
	want := `:KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
`
	if got := string(ourRules([]byte(saved), natChains)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
