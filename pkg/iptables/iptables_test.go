package iptables

import (
	"errors"
	"reflect"
	"syscall"
	"testing"
)

// baseRules is a Restore input most cases start from.
const baseRules = `:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ
`

// op is one call on the fake; wantErr is the errno (or EINVAL for
// refused input) it must fail with, 0 for success.
type op struct {
	do      func(f *Fake) error
	wantErr syscall.Errno
}

func restore(table, data string) func(*Fake) error {
	return func(f *Fake) error { return f.Restore(table, []byte(data)) }
}

func TestFake(t *testing.T) {
	ensureServices := func(f *Fake) error {
		return f.EnsureJump(TableNAT, "OUTPUT", "KUBE-SERVICES", "-m", "comment", "--comment", "kubernetes service portals")
	}
	deleteServices := func(f *Fake) error {
		return f.DeleteJump(TableNAT, "OUTPUT", "KUBE-SERVICES", "-m", "comment", "--comment", "kubernetes service portals")
	}
	tests := []struct {
		name string
		ops  []op
		want string
	}{{
		name: "restore and jump",
		ops: []op{
			{do: restore(TableNAT, baseRules)},
			{do: ensureServices},
			{do: ensureServices},
			{do: func(f *Fake) error { return f.EnsureJump(TableNAT, "OUTPUT", "KUBE-MARK-MASQ") }},
		},
		want: "*filter\n*nat\n" +
			":KUBE-MARK-MASQ -\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
			":KUBE-SERVICES -\n-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ\n" +
			":OUTPUT ACCEPT\n-A OUTPUT -j KUBE-MARK-MASQ\n-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
	}, {
		name: "declared chains are flushed, others kept",
		ops: []op{
			{do: restore(TableNAT, baseRules)},
			{do: restore(TableNAT, ":KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\n")},
		},
		want: "*filter\n*nat\n" +
			":KUBE-MARK-MASQ -\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
			":KUBE-SERVICES -\n-A KUBE-SERVICES -j RETURN\n",
	}, {
		name: "bad input changes nothing",
		ops: []op{
			{do: restore(TableNAT, baseRules)},
			{do: restore(TableNAT, ":KUBE-A - [0:0]\n-A KUBE-A -j KUBE-MISSING\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, ":KUBE-A - [0:0]\n-A KUBE-A -j KUBE-B\n:KUBE-B - [0:0]\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, "-A KUBE-SERVICES -j RETURN\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, "-A KUBE-NOWHERE -j RETURN\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, ":OUTPUT - [0:0]\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, ":KUBE-A - [0:0]\n-A KUBE-A -j OUTPUT\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, "-X KUBE-MARK-MASQ\n"), wantErr: syscall.ENOTEMPTY},
			{do: restore(TableNAT, ":KUBE-MARK-MASQ - [0:0]\n-X KUBE-MARK-MASQ\n"), wantErr: syscall.EBUSY},
			{do: restore(TableNAT, "-X KUBE-GONE\n"), wantErr: syscall.ENOENT},
			{do: restore(TableNAT, "-I KUBE-SERVICES -j RETURN\n"), wantErr: syscall.EINVAL},
			{do: restore(TableNAT, "COMMIT\n"), wantErr: syscall.EINVAL},
			{do: restore("mangle", ":KUBE-A - [0:0]\n"), wantErr: syscall.ENOENT},
			{do: func(f *Fake) error { return f.EnsureJump(TableNAT, "OUTPUT", "KUBE-MISSING") }, wantErr: syscall.EINVAL},
			{do: func(f *Fake) error { return f.EnsureJump(TableFilter, "PREROUTING", "ACCEPT") }, wantErr: syscall.ENOENT},
			{do: deleteServices, wantErr: syscall.ENOENT},
		},
		want: "*filter\n*nat\n" +
			":KUBE-MARK-MASQ -\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
			":KUBE-SERVICES -\n-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ\n",
	}, {
		name: "stale chain flushed and deleted in one restore",
		ops: []op{
			{do: restore(TableNAT, baseRules)},
			{do: restore(TableNAT, ":KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-X KUBE-MARK-MASQ\n")},
		},
		want: "*filter\n*nat\n:KUBE-SERVICES -\n",
	}, {
		name: "delete chains after the jump",
		ops: []op{
			{do: restore(TableNAT, baseRules)},
			{do: ensureServices},
			{do: func(f *Fake) error { return f.DeleteChains(TableNAT, []string{"KUBE-SERVICES", "KUBE-MARK-MASQ"}) }, wantErr: syscall.EBUSY},
			{do: deleteServices},
			{do: deleteServices, wantErr: syscall.ENOENT},
			{do: func(f *Fake) error {
				return f.DeleteChains(TableNAT, []string{"KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-NEVER-CREATED"})
			}},
			{do: func(f *Fake) error { return f.DeleteChains(TableNAT, []string{"KUBE-SERVICES"}) }},
		},
		want: "*filter\n*nat\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFake(false)
			for i, o := range tt.ops {
				err := o.do(f)
				if o.wantErr == 0 && err != nil || o.wantErr != 0 && !errors.Is(err, o.wantErr) {
					t.Errorf("op %d: got %v, want errno %v", i, err, o.wantErr)
				}
			}
			if got := f.Dump(); got != tt.want {
				t.Errorf("Dump() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestFakeSave(t *testing.T) {
	f := NewFake(true)
	if err := f.Restore(TableNAT, []byte(baseRules)); err != nil {
		t.Fatal(err)
	}
	if err := f.EnsureJump(TableNAT, "PREROUTING", "KUBE-SERVICES"); err != nil {
		t.Fatal(err)
	}
	got, err := f.Save(TableNAT)
	want := "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" +
		":KUBE-MARK-MASQ - [0:0]\n:KUBE-SERVICES - [0:0]\n" +
		"-A PREROUTING -j KUBE-SERVICES\n" +
		"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
		"-A KUBE-SERVICES -m comment --comment \"Kubernetes service cluster ip + port for masquerade purpose\" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ\n" +
		"COMMIT\n"
	if err != nil || string(got) != want {
		t.Errorf("Save(nat) = %v\n%s\nwant\n%s", err, got, want)
	}
	if !f.IsIPv6() {
		t.Errorf("IsIPv6() = false for NewFake(true)")
	}
}

func TestFakeInjectAndCalls(t *testing.T) {
	f := NewFake(false)
	injected := errors.New("injected")
	var seen []string
	f.Inject = func(op, object string) error {
		seen = append(seen, op+" "+object)
		return injected
	}
	if err := f.Restore(TableNAT, []byte(baseRules)); !errors.Is(err, injected) {
		t.Errorf("Restore = %v, want injected", err)
	}
	if err := f.EnsureJump(TableNAT, "OUTPUT", "ACCEPT"); !errors.Is(err, injected) {
		t.Errorf("EnsureJump = %v, want injected", err)
	}
	if _, err := f.Save(TableNAT); err != nil {
		t.Errorf("Save = %v, want nil (not a mutation)", err)
	}
	if want := "*filter\n*nat\n"; f.Dump() != want {
		t.Errorf("Dump() = %q, want %q", f.Dump(), want)
	}
	wantSeen := []string{"Restore nat", "EnsureJump nat/OUTPUT -> ACCEPT"}
	if !reflect.DeepEqual(seen, wantSeen) {
		t.Errorf("Inject saw %q, want %q", seen, wantSeen)
	}
	wantCalls := map[string]int{"Restore": 1, "EnsureJump": 1, "Save": 1}
	if !reflect.DeepEqual(f.Calls, wantCalls) {
		t.Errorf("Calls = %v, want %v", f.Calls, wantCalls)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`-A X -j Y`, []string{"-A", "X", "-j", "Y"}},
		{`-A X  -m comment --comment "a b;c" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "a b;c", "-j", "Y"}},
		{`--comment ""`, []string{"--comment", ""}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.line)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
		if back, _ := splitWords(joinWords(got)); !reflect.DeepEqual(back, got) {
			t.Errorf("joinWords(%q) = %q does not split back", got, joinWords(got))
		}
	}
	if _, err := splitWords(`--comment "open`); err == nil {
		t.Errorf("splitWords accepted an unterminated quote")
	}
}

func TestSavedChains(t *testing.T) {
	saved := "# Generated\n*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-A - [0:0]\n-A KUBE-A -j RETURN\nCOMMIT\n"
	want := map[string]bool{"PREROUTING": true, "KUBE-A": true}
	if got := savedChains([]byte(saved)); !reflect.DeepEqual(got, want) {
		t.Errorf("savedChains() = %v, want %v", got, want)
	}
}
