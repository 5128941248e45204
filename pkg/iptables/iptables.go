// Package iptables writes the proxier's chains with iptables-restore.
package iptables

// Table names.
const (
	TableFilter = "filter"
	TableNAT    = "nat"
)

// Interface is one address family's iptables (iptables or ip6tables).
type Interface interface {
	// Save returns the table in iptables-save format.
	Save(table string) ([]byte, error)
	// Restore applies data to one table with iptables-restore --noflush.
	// data holds only chain declarations (":KUBE-FOO - [0:0]") and rules
	// ("-A KUBE-FOO ..."); Restore itself writes the "*table" line before
	// and "COMMIT" after. Declared chains are created or flushed and
	// rewritten; other chains are left alone.
	Restore(table string, data []byte) error
	// EnsureJump makes sure the built-in chain starts with (prepend) a rule
	// that jumps to target with the given extra match arguments.
	EnsureJump(table, builtin, target string, args ...string) error
	// DeleteJump removes that rule; ENOENT-like error when absent.
	DeleteJump(table, builtin, target string, args ...string) error
	// DeleteChains flushes and deletes our chains (cleanup).
	DeleteChains(table string, chains []string) error
	IsIPv6() bool
}
