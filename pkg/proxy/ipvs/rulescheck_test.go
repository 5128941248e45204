package ipvs

import (
	"maps"
	"testing"
	"time"

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

// Driven by hand (no background read-back), a partial sync's write is not
// recorded (it ensures no jumps): the next full sync writes again, and a
// jump deleted meanwhile comes back.
func TestFullSyncAfterPartialRuleWriteRepairsJumps(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	syncOK(t, p)
	want := dumpOf(t, svc("a", "10.96.0.1"), nodePortSvc("b", "10.96.0.2", 30081))
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

// With SyncLoop running, a full sync does not read iptables under the sync
// lock (iptables-save is a process to start: seconds in a starved VM, and
// a removal waited behind it): the audit reads them after, in the
// background, and a change it finds is rewritten by the full sync it asks
// for.
func TestLoopingFullSyncAuditsRulesInTheBackground(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.looping.Store(true)
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.fullSyncTimer != nil {
			p.fullSyncTimer.Stop()
		}
	})
	clusterAB(p)
	syncOK(t, p)
	waitAudit(t, p)
	want := k.ipt4.Dump()
	must(t, k.ipt4.DeleteJump("filter", "INPUT", chainIPVSFilter, "-m", "comment", "--comment", "kubernetes ipvs access filter"))

	clear(k.ipt4.Calls)
	passSyncPeriod(p)
	p.audit.running.Store(true) // hold the audit back: what does the sync alone read?
	syncOK(t, p)
	if n := k.ipt4.Calls["Save"]; n != 0 {
		t.Errorf("full sync ran iptables-save %d times under the sync lock, want 0 (%v)", n, k.ipt4.Calls)
	}
	p.audit.running.Store(false)

	p.mu.Lock()
	p.startRuleAudit()
	p.mu.Unlock()
	waitAudit(t, p)
	p.mu.Lock()
	asked := p.needFull
	p.mu.Unlock()
	if !asked {
		t.Fatal("the audit did not ask for a full sync after a jump to our chain was deleted")
	}
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), want)
}

// An audit of rules recorded before a later write asks for no rewrite:
// that write made them, not someone else (the table is read again against
// the new record, and matches it).
func TestRuleAuditOfAnOlderRecordIsDropped(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.looping.Store(true)
	clusterAB(p)
	syncOK(t, p)
	p.mu.Lock()
	if p.fullSyncTimer != nil {
		p.fullSyncTimer.Stop()
	}
	want := maps.Clone(p.savedRules)
	p.needFull = false
	p.mu.Unlock()
	want["filter"] = []byte("not what iptables shows") // a later full sync recorded filter again
	p.audit.running.Store(true)
	p.auditRules(want)
	if p.needFull || len(p.audit.changed) > 0 {
		t.Errorf("a stale audit asked for a rewrite: needFull %v, changed %v", p.needFull, p.audit.changed)
	}
}

func waitAudit(t *testing.T, p *Proxier) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); p.audit.running.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the iptables audit did not finish in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With SyncLoop running, a partial sync's write is read back in the
// background and recorded: the next full sync then writes nothing (it used
// to rewrite both tables and re-check every jump under the sync lock, and a
// removal mid rolling update waited seconds behind it).
func TestPartialRuleWriteIsRecordedInTheBackground(t *testing.T) {
	k, p := auditedLoopingProxier(t)
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // node port set jumps appear: a partial write
	syncOK(t, p)
	waitRecord(t, p)
	p.mu.Lock()
	recorded := len(p.savedRules)
	p.mu.Unlock()
	if recorded != 2 {
		t.Fatalf("after a partial write, %d tables recorded, want 2", recorded)
	}
	want := k.ipt4.Dump()
	clear(k.ipt4.Calls)
	passSyncPeriod(p)
	p.audit.running.Store(true) // the audit is not what is measured
	syncOK(t, p)
	if n := k.ipt4.Calls["Restore"] + k.ipt4.Calls["EnsureJump"] + k.ipt4.Calls["Save"]; n != 0 {
		t.Errorf("full sync after a recorded partial write: %d iptables calls under the lock (%v), want 0", n, k.ipt4.Calls)
	}
	wantDump(t, "iptables", k.ipt4.Dump(), want)
}

// A jump deleted between a partial write and its read-back is not recorded
// as ours: the next full sync rewrites the table and puts the jump back.
func TestPartialRuleWriteWithAJumpGoneIsNotRecorded(t *testing.T) {
	k, p := auditedLoopingProxier(t)
	want := dumpOf(t, svc("a", "10.96.0.1"), nodePortSvc("b", "10.96.0.2", 30081))
	p.mu.Lock()
	p.audit.recording = true // hold the read-back until the jump is gone
	p.mu.Unlock()
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081))
	syncOK(t, p)
	must(t, k.ipt4.DeleteJump("nat", "OUTPUT", chainServices, "-m", "comment", "--comment", "kubernetes service portals"))
	p.recordInBackground()
	p.mu.Lock()
	_, recorded := p.savedRules["nat"]
	p.mu.Unlock()
	if recorded {
		t.Fatal("the nat table was recorded although a jump to our chain was deleted before the read-back")
	}
	passSyncPeriod(p)
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), want)
}

// A read-back that began before a later write is read again: what it saw
// may be older than that write.
func TestPartialRuleReadBackBeforeAWriteIsRetried(t *testing.T) {
	k, p := auditedLoopingProxier(t)
	p.mu.Lock()
	p.audit.recording = true
	p.mu.Unlock()
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081))
	syncOK(t, p)
	k.ipt4.AfterSave = func(string) { // another partial write lands during the read
		k.ipt4.AfterSave = nil
		p.OnServiceAdd(svc("c", "10.96.0.3", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.1"} }))
		syncOK(t, p)
	}
	p.recordInBackground()
	p.mu.Lock()
	got := string(p.savedRules["nat"])
	p.mu.Unlock()
	saved, err := k.ipt4.Save("nat")
	must(t, err)
	if want := string(ourRules(saved, natChains)); got != want {
		t.Errorf("recorded nat rules are not the latest write's:\n%s\nwant:\n%s", got, want)
	}
}

func loopingProxier(t *testing.T, k *kernel) *Proxier {
	t.Helper()
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	p.looping.Store(true)
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.fullSyncTimer != nil {
			p.fullSyncTimer.Stop()
		}
	})
	return p
}

func waitRecord(t *testing.T, p *Proxier) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		busy := p.audit.recording
		p.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the read-back of a partial write did not finish in 5 s")
		}
	}
}

// The invariant of the audit: an external change to our chains or to the
// jumps to them is repaired by the full sync after the audit that follows
// the change. repairedAfterNextAudit runs that: a periodic full sync, its
// audit, the full sync after it.
func repairedAfterNextAudit(t *testing.T, k *kernel, p *Proxier, want string) {
	t.Helper()
	waitRecord(t, p)
	passSyncPeriod(p)
	syncOK(t, p)
	waitAudit(t, p)
	passSyncPeriod(p)
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), want)
}

// dumpOf is the iptables a fresh proxier writes for services.
func dumpOf(t *testing.T, services ...*v1.Service) string {
	t.Helper()
	fresh := newKernel(t)
	q := newTestProxier(t, fresh, testConfig(v1.IPv4Protocol))
	for _, s := range services {
		q.OnServiceAdd(s)
	}
	syncOK(t, q)
	return fresh.ipt4.Dump()
}

// A full sync that rewrites one table records the other as it was
// recorded, not as it reads now: reading it again would take someone
// else's change to it for ours, and no audit would ever find it.
func TestFullSyncWritingOneTableKeepsTheOthersRecord(t *testing.T) {
	addToForward := func(t *testing.T, k *kernel) {
		must(t, k.ipt4.EnsureJump("filter", chainForward, "DROP", "-s", "198.51.100.7/32"))
	}
	t.Run("after a partial write whose jumps changed", func(t *testing.T) {
		k, p := auditedLoopingProxier(t)
		p.mu.Lock()
		p.audit.recording = true // hold the read-back until the changes are made
		p.mu.Unlock()
		p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // a partial write of nat
		syncOK(t, p)
		want := k.ipt4.Dump()
		must(t, k.ipt4.DeleteJump("nat", "OUTPUT", chainServices, "-m", "comment", "--comment", "kubernetes service portals"))
		addToForward(t, k)
		p.recordInBackground()
		repairedAfterNextAudit(t, k, p, want)
	})
	t.Run("a full sync with a changed service", func(t *testing.T) {
		k, p := auditedLoopingProxier(t)
		addToForward(t, k)
		p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // nat changes in the full sync
		repairedAfterNextAudit(t, k, p, dumpOf(t, svc("a", "10.96.0.1"), nodePortSvc("b", "10.96.0.2", 30081)))
	})
}

// An audit's finding in one table stands when a partial sync rewrote only
// the other table meanwhile: that write repaired nothing in the first.
func TestRuleAuditFindingSurvivesAPartialWriteOfTheOtherTable(t *testing.T) {
	k, p := auditedLoopingProxier(t)
	must(t, k.ipt4.DeleteJump("filter", "INPUT", chainIPVSFilter, "-m", "comment", "--comment", "kubernetes ipvs access filter"))
	k.ipt4.AfterSave = func(string) { // a partial write of nat lands during the audit
		k.ipt4.AfterSave = nil
		p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081))
		syncOK(t, p)
		p.mu.Lock()
		_, filterKept := p.savedRules["filter"]
		p.mu.Unlock()
		if !filterKept {
			t.Fatal("the partial write was expected to leave the filter table's record alone")
		}
	}
	p.mu.Lock()
	want := maps.Clone(p.savedRules)
	p.mu.Unlock()
	p.audit.running.Store(true)
	p.auditRules(want)
	waitRecord(t, p)
	passSyncPeriod(p)
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), dumpOf(t, svc("a", "10.96.0.1"), nodePortSvc("b", "10.96.0.2", 30081)))
}

// An audit whose table was written and recorded again while it ran reads
// that table again against the new record: what it read may be our write,
// or someone else's change made after the new record, which the full sync
// after this audit must repair.
func TestRuleAuditOfAReRecordedTableReadsItAgain(t *testing.T) {
	k, p := auditedLoopingProxier(t)
	p.mu.Lock()
	want := maps.Clone(p.savedRules) // the audit starts
	p.audit.recording = true         // hold the read-back
	p.mu.Unlock()
	p.audit.running.Store(true)
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // a partial write of nat
	syncOK(t, p)
	p.recordInBackground() // and its read-back records it
	wantRules := k.ipt4.Dump()
	must(t, k.ipt4.EnsureJump("nat", chainServices, "ACCEPT", "-s", "198.51.100.7/32"))
	p.auditRules(want) // the audit reads nat now
	passSyncPeriod(p)
	syncOK(t, p)
	wantDump(t, "iptables", k.ipt4.Dump(), wantRules)
}

// Our chains changed by someone else between a partial write and its
// read-back must not be recorded as ours: the audit would then find them
// as recorded, and no full sync would ever repair them.
func TestPartialRuleWriteChangedBeforeItsReadBackIsRepaired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		meddle func(t *testing.T, k *kernel)
	}{
		{name: "our chain flushed", meddle: func(t *testing.T, k *kernel) {
			must(t, k.ipt4.Restore("nat", []byte(":"+chainNodePort+" - [0:0]\n")))
		}},
		{name: "a rule added to our chain", meddle: func(t *testing.T, k *kernel) {
			must(t, k.ipt4.EnsureJump("nat", chainServices, "ACCEPT", "-s", "198.51.100.7/32"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, p := auditedLoopingProxier(t)
			p.mu.Lock()
			p.audit.recording = true // hold the read-back until the change is made
			p.mu.Unlock()
			p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081)) // a partial write
			syncOK(t, p)
			want := k.ipt4.Dump()
			tc.meddle(t, k)
			p.recordInBackground()
			repairedAfterNextAudit(t, k, p, want)
		})
	}
}

// A change made while a full sync records what it wrote (after its
// restore and jumps, before its iptables-save: seconds in a starved VM)
// must not be recorded as ours either.
func TestFullSyncRecordChangedWhileRecordingIsRepaired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		meddle func(k *kernel) error
	}{
		{name: "our chain flushed", meddle: func(k *kernel) error {
			return k.ipt4.Restore("filter", []byte(":"+chainForward+" - [0:0]\n"))
		}},
		{name: "a rule added to our chain", meddle: func(k *kernel) error {
			return k.ipt4.EnsureJump("filter", chainIPVSFilter, "ACCEPT", "-s", "198.51.100.7/32")
		}},
		{name: "a jump deleted", meddle: func(k *kernel) error {
			return k.ipt4.DeleteJump("filter", "INPUT", chainIPVSFilter, "-m", "comment", "--comment", "kubernetes ipvs access filter")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p := loopingProxier(t, k)
			p.OnServiceAdd(svc("a", "10.96.0.1"))
			var err error
			k.ipt4.AfterSave = func(table string) { // the full sync has read nat back, filter is next
				if table == "nat" {
					k.ipt4.AfterSave = nil
					err = tc.meddle(k)
				}
			}
			p.audit.running.Store(true) // no audit of the first sync: it would read too
			syncOK(t, p)
			must(t, err)
			p.audit.running.Store(false)
			repairedAfterNextAudit(t, k, p, dumpOf(t, svc("a", "10.96.0.1")))
		})
	}
}

// auditedLoopingProxier is a looping proxier with one Service synced and its
// rules' background audit done: the start of every test of the record.
func auditedLoopingProxier(t *testing.T) (*kernel, *Proxier) {
	t.Helper()
	k := newKernel(t)
	p := loopingProxier(t, k)
	p.OnServiceAdd(svc("a", "10.96.0.1"))
	syncOK(t, p)
	waitAudit(t, p)
	return k, p
}
