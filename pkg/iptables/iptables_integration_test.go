//go:build integration

package iptables

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// kernelRules are rules iptables-save prints back unchanged.
const kernelRules = `:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A KUBE-MARK-MASQ -j RETURN
-A KUBE-SERVICES -m comment --comment "kubernetes service portals" -j KUBE-MARK-MASQ
-A KUBE-POSTROUTING -j ACCEPT
`

// save returns a table's iptables-save text without comment lines.
func save(t *testing.T, i Interface, table string) string {
	t.Helper()
	out, err := i.Save(table)
	if err != nil {
		t.Fatalf("save %s: %v", table, err)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "#") && line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// both runs a step on the kernel and the fake and checks they agree on
// success or failure, and on ENOENT.
func both(t *testing.T, name string, kernel, fake Interface, do func(Interface) error) {
	t.Helper()
	kerr, ferr := do(kernel), do(fake)
	if (kerr == nil) != (ferr == nil) || errors.Is(kerr, syscall.ENOENT) != errors.Is(ferr, syscall.ENOENT) {
		t.Errorf("%s: kernel said %v, fake said %v", name, kerr, ferr)
	}
}

// step is one operation run against both the kernel and the fake.
type step struct {
	name string
	do   func(Interface) error
}

func families() []bool { return []bool{false, true} }

func TestKernelRestoreSaveJumps(t *testing.T) {
	for _, ipv6 := range families() {
		t.Run(fmt.Sprintf("ipv6=%v", ipv6), func(t *testing.T) {
			nettest.EnterNewNetns(t)
			kernel, fake := New(ipv6), NewFake(ipv6)
			comment := []string{"-m", "comment", "--comment", "kubernetes service portals"}
			steps := []step{
				{"restore", func(i Interface) error { return i.Restore(TableNAT, []byte(kernelRules)) }},
				{"restore again", func(i Interface) error { return i.Restore(TableNAT, []byte(kernelRules)) }},
				{"restore filter", func(i Interface) error {
					return i.Restore(TableFilter, []byte(":KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT"))
				}},
				{"jump", func(i Interface) error { return i.EnsureJump(TableNAT, "OUTPUT", "KUBE-SERVICES", comment...) }},
				{"jump again", func(i Interface) error { return i.EnsureJump(TableNAT, "OUTPUT", "KUBE-SERVICES", comment...) }},
				{"second jump goes first", func(i Interface) error { return i.EnsureJump(TableNAT, "OUTPUT", "KUBE-MARK-MASQ") }},
				{"jump postrouting", func(i Interface) error { return i.EnsureJump(TableNAT, "POSTROUTING", "KUBE-POSTROUTING") }},
				{"jump to missing chain", func(i Interface) error { return i.EnsureJump(TableNAT, "OUTPUT", "KUBE-MISSING") }},
				{"delete chains still jumped to", func(i Interface) error {
					return i.DeleteChains(TableNAT, []string{"KUBE-SERVICES", "KUBE-MARK-MASQ"})
				}},
				{"delete missing jump", func(i Interface) error { return i.DeleteJump(TableNAT, "PREROUTING", "KUBE-SERVICES") }},
				{"delete jump", func(i Interface) error { return i.DeleteJump(TableNAT, "OUTPUT", "KUBE-MARK-MASQ") }},
			}
			for _, s := range steps {
				both(t, s.name, kernel, fake, s.do)
			}
			for _, table := range []string{TableNAT, TableFilter} {
				if k, f := save(t, kernel, table), save(t, fake, table); k != f {
					t.Errorf("Save(%s): kernel\n%s\nfake\n%s", table, k, f)
				}
			}
			steps = []step{
				{"delete jump again", func(i Interface) error { return i.DeleteJump(TableNAT, "OUTPUT", "KUBE-MARK-MASQ") }},
				{"delete last jump", func(i Interface) error { return i.DeleteJump(TableNAT, "OUTPUT", "KUBE-SERVICES", comment...) }},
				{"delete postrouting jump", func(i Interface) error { return i.DeleteJump(TableNAT, "POSTROUTING", "KUBE-POSTROUTING") }},
				{"delete chains", func(i Interface) error {
					return i.DeleteChains(TableNAT, []string{"KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING", "KUBE-NEVER"})
				}},
				{"delete chains again", func(i Interface) error { return i.DeleteChains(TableNAT, []string{"KUBE-SERVICES"}) }},
			}
			for _, s := range steps {
				both(t, s.name, kernel, fake, s.do)
			}
			if k, f := save(t, kernel, TableNAT), save(t, fake, TableNAT); k != f {
				t.Errorf("Save(nat) after cleanup: kernel\n%s\nfake\n%s", k, f)
			}
			if kernel.IsIPv6() != ipv6 {
				t.Errorf("IsIPv6() = %v", kernel.IsIPv6())
			}
		})
	}
}

// TestKernelRejectsLikeFake feeds both the same bad inputs: each must fail
// and leave the table as it was.
func TestKernelRejectsLikeFake(t *testing.T) {
	bad := []string{
		":KUBE-A - [0:0]\n-A KUBE-A -j KUBE-MISSING\n",
		":KUBE-A - [0:0]\n-A KUBE-A -j KUBE-LATER\n:KUBE-LATER - [0:0]\n",
		"-A KUBE-NOWHERE -j RETURN\n",
		"-X KUBE-GONE\n",
		":KUBE-MARK-MASQ - [0:0]\n-X KUBE-MARK-MASQ\n",
		"-X KUBE-MARK-MASQ\n",
	}
	for _, ipv6 := range families() {
		t.Run(fmt.Sprintf("ipv6=%v", ipv6), func(t *testing.T) {
			nettest.EnterNewNetns(t)
			kernel, fake := New(ipv6), NewFake(ipv6)
			both(t, "restore", kernel, fake, func(i Interface) error { return i.Restore(TableNAT, []byte(kernelRules)) })
			before := save(t, kernel, TableNAT)
			for _, data := range bad {
				kerr, ferr := kernel.Restore(TableNAT, []byte(data)), fake.Restore(TableNAT, []byte(data))
				if kerr == nil || ferr == nil {
					t.Errorf("Restore(%q): kernel said %v, fake said %v; want both to fail", data, kerr, ferr)
				}
				t.Logf("Restore(%q): kernel: %v; fake: %v", data, kerr, ferr)
			}
			if after := save(t, kernel, TableNAT); after != before {
				t.Errorf("kernel table changed by failed restores:\n%s\nwas\n%s", after, before)
			}
			if k, f := save(t, kernel, TableNAT), save(t, fake, TableNAT); k != f {
				t.Errorf("Save(nat): kernel\n%s\nfake\n%s", k, f)
			}
		})
	}
}
