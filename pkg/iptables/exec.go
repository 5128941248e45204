package iptables

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	utilexec "k8s.io/utils/exec"
)

// runner is Interface over the iptables binaries, through upstream's
// runner (which takes the xtables lock with -w).
type runner struct {
	upstream utiliptables.Interface
	exec     utilexec.Interface
	ipv6     bool
}

// New returns iptables (or ip6tables when ipv6) in the network namespace
// of the calling thread.
func New(ipv6 bool) Interface {
	protocol := utiliptables.ProtocolIPv4
	if ipv6 {
		protocol = utiliptables.ProtocolIPv6
	}
	return &runner{upstream: utiliptables.New(protocol), exec: utilexec.New(), ipv6: ipv6}
}

func (r *runner) IsIPv6() bool { return r.ipv6 }

func (r *runner) Save(table string) ([]byte, error) {
	var buf bytes.Buffer
	if err := r.upstream.SaveInto(utiliptables.Table(table), &buf); err != nil {
		return nil, fmt.Errorf("save table %s: %w: %s", table, err, buf.Bytes())
	}
	return buf.Bytes(), nil
}

func (r *runner) Restore(table string, data []byte) error {
	var input bytes.Buffer
	fmt.Fprintf(&input, "*%s\n", table)
	input.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		input.WriteByte('\n')
	}
	input.WriteString("COMMIT\n")
	klog.V(4).InfoS("Restoring iptables", "table", table, "ipv6", r.ipv6, "bytes", input.Len())
	err := r.upstream.Restore(utiliptables.Table(table), input.Bytes(), utiliptables.NoFlushTables, utiliptables.NoRestoreCounters)
	if err != nil {
		return fmt.Errorf("restore table %s: %w", table, err)
	}
	return nil
}

func (r *runner) EnsureJump(table, builtin, target string, args ...string) error {
	rule := jumpRule(target, args)
	existed, err := r.upstream.EnsureRule(utiliptables.Prepend, utiliptables.Table(table), utiliptables.Chain(builtin), rule...)
	if err != nil {
		return fmt.Errorf("ensure jump from %s/%s to %s: %w", table, builtin, target, err)
	}
	if !existed {
		klog.V(4).InfoS("Inserted jump", "table", table, "chain", builtin, "rule", joinWords(rule))
	}
	return nil
}

// DeleteJump runs iptables -D itself: upstream's DeleteRule succeeds when
// the rule is absent, and Interface wants ENOENT then.
func (r *runner) DeleteJump(table, builtin, target string, args ...string) error {
	cmd := "iptables"
	if r.ipv6 {
		cmd = "ip6tables"
	}
	full := append([]string{utiliptables.WaitString, utiliptables.WaitSecondsValue, "-t", table, "-D", builtin}, jumpRule(target, args)...)
	out, err := r.exec.Command(cmd, full...).CombinedOutput()
	if err == nil {
		klog.V(4).InfoS("Deleted jump", "table", table, "chain", builtin, "target", target)
		return nil
	}
	err = fmt.Errorf("delete jump from %s/%s to %s: %w: %s", table, builtin, target, err, bytes.TrimSpace(out))
	if utiliptables.IsNotFoundError(err) {
		return fmt.Errorf("%w (%w)", err, syscall.ENOENT)
	}
	return err
}

// jumpRule is a rule's words after the chain: the match args, then -j.
func jumpRule(target string, args []string) []string {
	return append(slices.Clone(args), "-j", target)
}

// DeleteChains flushes and deletes, in one iptables-restore, those of the
// chains that exist. It fails, changing nothing, while a remaining rule
// (a jump from a built-in chain) still refers to one of them.
func (r *runner) DeleteChains(table string, chains []string) error {
	saved, err := r.Save(table)
	if err != nil {
		return fmt.Errorf("delete chains: %w", err)
	}
	existing := savedChains(saved)
	var declare, remove strings.Builder
	for _, chain := range chains {
		if existing[chain] {
			fmt.Fprintf(&declare, ":%s - [0:0]\n", chain)
			fmt.Fprintf(&remove, "-X %s\n", chain)
		}
	}
	if declare.Len() == 0 {
		return nil
	}
	if err := r.Restore(table, []byte(declare.String()+remove.String())); err != nil {
		return fmt.Errorf("delete chains %v: %w", chains, err)
	}
	return nil
}

// savedChains returns the chains an iptables-save output declares.
func savedChains(saved []byte) map[string]bool {
	chains := map[string]bool{}
	for _, line := range strings.Split(string(saved), "\n") {
		if name, ok := strings.CutPrefix(line, ":"); ok && len(strings.Fields(name)) > 0 {
			chains[strings.Fields(name)[0]] = true
		}
	}
	return chains
}
