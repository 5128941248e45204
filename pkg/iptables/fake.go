package iptables

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory Interface with the tables filter and nat and their
// built-in chains. Restore parses its input like iptables-restore --noflush
// and applies all of it or nothing. It is stricter than iptables-restore
// where the real thing would let rules pile up sync after sync: a rule may
// only be appended to a chain declared earlier in the same input, and a
// built-in chain may not be declared (iptables-restore --noflush does not
// flush it). Besides ":CHAIN - [0:0]", "-A CHAIN ..." and "-X CHAIN" it
// refuses every command.
type Fake struct {
	// Inject, when set, is called before every mutating operation with the
	// method name and the object; an error fails the operation unchanged.
	Inject func(op, object string) error
	// AfterSave, when set, is called once a Save has read the table, outside
	// the fake's lock: tests use it to land a write during a read.
	AfterSave func(table string)
	// Calls counts the calls of each method.
	Calls map[string]int

	mu     sync.Mutex
	ipv6   bool
	tables map[string]fakeTable
}

// fakeTable maps a chain name to its chain.
type fakeTable map[string]*fakeChain

type fakeChain struct {
	builtin bool
	rules   []string // each rule's words after "-A CHAIN", joined
}

var _ Interface = &Fake{}

// NewFake returns a Fake with empty built-in chains.
func NewFake(ipv6 bool) *Fake {
	f := &Fake{Calls: map[string]int{}, ipv6: ipv6, tables: map[string]fakeTable{}}
	for _, name := range []string{TableFilter, TableNAT} {
		t := fakeTable{}
		for _, chain := range builtinChains(name) {
			t[chain] = &fakeChain{builtin: true}
		}
		f.tables[name] = t
	}
	return f
}

// begin counts the call and runs the injected fault, with f.mu held.
func (f *Fake) begin(op, object string) error {
	f.Calls[op]++
	if f.Inject != nil {
		return f.Inject(op, object)
	}
	return nil
}

func (f *Fake) IsIPv6() bool { return f.ipv6 }

// table returns a table, or iptables' error for an unknown one.
func (f *Fake) table(name string) (fakeTable, error) {
	t, ok := f.tables[name]
	if !ok {
		return nil, fmt.Errorf("table %s does not exist: %w", name, syscall.ENOENT)
	}
	return t, nil
}

// Save writes the table like iptables-save: built-in chains first, then
// ours sorted, then the rules chain by chain (no counters, no comments).
func (f *Fake) Save(table string) ([]byte, error) {
	out, err := f.save(table)
	if f.AfterSave != nil {
		f.AfterSave(table)
	}
	return out, err
}

func (f *Fake) save(table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Save"]++
	t, err := f.table(table)
	if err != nil {
		return nil, fmt.Errorf("save table %s: %w", table, err)
	}
	order := slices.Concat(builtinChains(table), t.userChains())
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n", table)
	for _, name := range order {
		fmt.Fprintf(&b, ":%s %s [0:0]\n", name, policy(t[name]))
	}
	for _, name := range order {
		for _, rule := range t[name].rules {
			fmt.Fprintf(&b, "-A %s %s\n", name, rule)
		}
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String()), nil
}

func policy(c *fakeChain) string {
	if c.builtin {
		return "ACCEPT"
	}
	return "-"
}

// userChains returns the table's own chains, sorted.
func (t fakeTable) userChains() []string {
	var names []string
	for name, c := range t {
		if !c.builtin {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (f *Fake) Restore(table string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("Restore", table); err != nil {
		return err
	}
	return f.restore(table, string(data))
}

// restore applies data to a copy of the table and keeps it on success.
func (f *Fake) restore(table, data string) error {
	t, err := f.table(table)
	if err != nil {
		return fmt.Errorf("restore table %s: %w", table, err)
	}
	work := t.clone()
	declared := map[string]bool{}
	for i, line := range strings.Split(data, "\n") {
		if err := work.apply(line, declared); err != nil {
			// Line 1 of iptables-restore's input is the "*table" line.
			return fmt.Errorf("restore table %s: line %d %q: %w", table, i+2, line, err)
		}
	}
	f.tables[table] = work
	return nil
}

func (t fakeTable) clone() fakeTable {
	out := fakeTable{}
	for name, c := range t {
		out[name] = &fakeChain{builtin: c.builtin, rules: slices.Clone(c.rules)}
	}
	return out
}

// errInput is how the fake refuses input iptables-restore would refuse.
var errInput = syscall.EINVAL

// apply runs one line of iptables-restore input.
func (t fakeTable) apply(line string, declared map[string]bool) error {
	words, err := splitWords(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("%w: %w", err, errInput)
	}
	switch {
	case len(words) == 0 || strings.HasPrefix(words[0], "#"):
		return nil
	case strings.HasPrefix(words[0], ":"):
		return t.declare(strings.TrimPrefix(words[0], ":"), words[1:], declared)
	case words[0] == "-A" && len(words) >= 2:
		return t.appendRule(words[1], words[2:], declared)
	case words[0] == "-X" && len(words) == 2:
		return t.deleteChain(words[1])
	}
	return fmt.Errorf("command not supported by the fake: %w", errInput)
}

// declare creates a chain or flushes an existing one.
func (t fakeTable) declare(name string, rest []string, declared map[string]bool) error {
	if name == "" || len(rest) == 0 {
		return fmt.Errorf("bad chain declaration: %w", errInput)
	}
	if c := t[name]; c != nil && c.builtin {
		return fmt.Errorf("built-in chain %s declared: --noflush would not flush it: %w", name, errInput)
	}
	if rest[0] != "-" {
		return fmt.Errorf("policy %s on chain %s: %w", rest[0], name, errInput)
	}
	t[name] = &fakeChain{}
	declared[name] = true
	return nil
}

// appendRule appends a rule to a chain declared in this input.
func (t fakeTable) appendRule(chain string, rule []string, declared map[string]bool) error {
	if t[chain] == nil {
		return fmt.Errorf("no chain %s: %w", chain, errInput)
	}
	if !declared[chain] {
		return fmt.Errorf("rule in chain %s not declared in this input: %w", chain, errInput)
	}
	if err := t.checkTarget(jumpTarget(rule)); err != nil {
		return err
	}
	t[chain].rules = append(t[chain].rules, joinWords(rule))
	return nil
}

// checkTarget accepts no target, a known target or an existing chain of
// ours (iptables cannot jump to a built-in chain).
func (t fakeTable) checkTarget(target string) error {
	if target == "" || isTarget(target) {
		return nil
	}
	if c := t[target]; c == nil || c.builtin {
		return fmt.Errorf("jump to missing chain %s: %w", target, errInput)
	}
	return nil
}

// deleteChain deletes an empty, unreferenced chain of ours.
func (t fakeTable) deleteChain(name string) error {
	c := t[name]
	switch {
	case c == nil:
		return fmt.Errorf("delete chain %s: %w", name, syscall.ENOENT)
	case c.builtin:
		return fmt.Errorf("delete built-in chain %s: %w", name, errInput)
	case len(c.rules) > 0:
		return fmt.Errorf("delete chain %s: %w", name, syscall.ENOTEMPTY)
	case t.referenced(name):
		return fmt.Errorf("delete chain %s: still referenced: %w", name, syscall.EBUSY)
	}
	delete(t, name)
	return nil
}

// referenced reports whether a rule jumps to the chain.
func (t fakeTable) referenced(name string) bool {
	for _, c := range t {
		for _, rule := range c.rules {
			words, _ := splitWords(rule)
			if jumpTarget(words) == name {
				return true
			}
		}
	}
	return false
}

func (f *Fake) EnsureJump(table, builtin, target string, args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("EnsureJump", jumpName(table, builtin, target)); err != nil {
		return err
	}
	c, err := f.chain(table, builtin)
	if err == nil {
		err = f.tables[table].checkTarget(target)
	}
	if err != nil {
		return fmt.Errorf("ensure jump %s: %w", jumpName(table, builtin, target), err)
	}
	rule := joinWords(jumpRule(target, args))
	if !slices.Contains(c.rules, rule) {
		c.rules = slices.Insert(c.rules, 0, rule)
	}
	return nil
}

func (f *Fake) DeleteJump(table, builtin, target string, args ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DeleteJump", jumpName(table, builtin, target)); err != nil {
		return err
	}
	c, err := f.chain(table, builtin)
	rule := joinWords(jumpRule(target, args))
	i := -1
	if err == nil {
		if i = slices.Index(c.rules, rule); i < 0 {
			err = syscall.ENOENT
		}
	}
	if err != nil {
		return fmt.Errorf("delete jump %s: %w", jumpName(table, builtin, target), err)
	}
	c.rules = slices.Delete(c.rules, i, i+1)
	return nil
}

func jumpName(table, builtin, target string) string {
	return table + "/" + builtin + " -> " + target
}

// chain returns an existing chain.
func (f *Fake) chain(table, name string) (*fakeChain, error) {
	t, err := f.table(table)
	if err != nil {
		return nil, err
	}
	if t[name] == nil {
		return nil, fmt.Errorf("no chain %s/%s: %w", table, name, syscall.ENOENT)
	}
	return t[name], nil
}

func (f *Fake) DeleteChains(table string, chains []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DeleteChains", table+" "+strings.Join(chains, ",")); err != nil {
		return err
	}
	t, err := f.table(table)
	if err != nil {
		return fmt.Errorf("delete chains: %w", err)
	}
	var declare, remove strings.Builder
	for _, chain := range chains {
		if t[chain] != nil {
			fmt.Fprintf(&declare, ":%s - [0:0]\n", chain)
			fmt.Fprintf(&remove, "-X %s\n", chain)
		}
	}
	if err := f.restore(table, declare.String()+remove.String()); err != nil {
		return fmt.Errorf("delete chains %v: %w", chains, err)
	}
	return nil
}

// Dump writes every table, sorted, and in it every chain, sorted, each
// followed by its rules in order: "*nat", ":KUBE-SERVICES -",
// "-A KUBE-SERVICES ...". Built-in chains without rules are left out.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, table := range slices.Sorted(maps.Keys(f.tables)) {
		fmt.Fprintf(&b, "*%s\n", table)
		t := f.tables[table]
		for _, name := range slices.Sorted(maps.Keys(t)) {
			c := t[name]
			if c.builtin && len(c.rules) == 0 {
				continue
			}
			fmt.Fprintf(&b, ":%s %s\n", name, policy(c))
			for _, rule := range c.rules {
				fmt.Fprintf(&b, "-A %s %s\n", name, rule)
			}
		}
	}
	return b.String()
}
