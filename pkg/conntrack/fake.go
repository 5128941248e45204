package conntrack

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Fake is an in-memory conntrack table. Tests fill it with Add.
type Fake struct {
	// Inject, when set, is called before every Delete with the method name
	// and the filters; an error fails the Delete unchanged. It is called
	// again before each dump of a family's table ("Dump", "ipv4"/"ipv6"):
	// see dumpAndDelete for ErrDumpInterrupted.
	Inject func(op, object string) error
	// Calls counts the calls of each method (Add included).
	Calls map[string]int

	mu      sync.Mutex
	entries map[Entry]bool
}

var _ Interface = &Fake{}

// NewFake returns an empty table.
func NewFake() *Fake {
	return &Fake{Calls: map[string]int{}, entries: map[Entry]bool{}}
}

// Add puts an entry in the table (as traffic would); adding it again
// changes nothing, like a packet of a known connection.
func (f *Fake) Add(e Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Add"]++
	f.entries[e] = true
}

func (f *Fake) Delete(filters []Filter) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Delete"]++
	if f.Inject != nil {
		if err := f.Inject("Delete", filterNames(filters)); err != nil {
			return 0, err
		}
	}
	tables, err := tables(filters)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tables {
		n, err := retryInterrupted(t.op(), func() (int, error) { return f.dumpAndDelete(t) })
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// dumpAndDelete is one pass over t's table, as the kernel implementation
// makes. Inject("Dump", "ipv4" or "ipv6") is called first: an error fails
// the pass, except ErrDumpInterrupted, with which the pass sees only the
// first half of the matching entries (sorted), deletes them and returns
// the error, like a dump the kernel cut short.
func (f *Fake) dumpAndDelete(t table) (int, error) {
	f.Calls["Dump"]++
	var err error
	if f.Inject != nil {
		err = f.Inject("Dump", t.name())
	}
	if err != nil && !errors.Is(err, ErrDumpInterrupted) {
		return 0, err
	}
	matched := slices.DeleteFunc(f.sorted(), func(e Entry) bool { return !t.has(e) || !t.matches(e) })
	if err != nil {
		matched = matched[:len(matched)/2]
	}
	for _, e := range matched {
		delete(f.entries, e)
	}
	return len(matched), err
}

func filterNames(filters []Filter) string {
	names := make([]string, len(filters))
	for i, f := range filters {
		names[i] = f.String()
	}
	return strings.Join(names, "; ")
}

// Entries returns the table's entries, sorted.
func (f *Fake) Entries() []Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sorted()
}

func (f *Fake) sorted() []Entry {
	var out []Entry
	for e := range f.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// Dump writes one line per entry (Entry.String), sorted.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, e := range f.sorted() {
		fmt.Fprintln(&b, e)
	}
	return b.String()
}

// compareEntries orders entries by protocol, then original tuple, then
// reply source.
func compareEntries(a, b Entry) int {
	return cmp.Or(
		cmp.Compare(a.Protocol, b.Protocol),
		a.OrigSrc.Compare(b.OrigSrc), cmp.Compare(a.OrigSrcPort, b.OrigSrcPort),
		a.OrigDst.Compare(b.OrigDst), cmp.Compare(a.OrigDstPort, b.OrigDstPort),
		a.ReplySrc.Compare(b.ReplySrc), cmp.Compare(a.ReplySrcPort, b.ReplySrcPort),
	)
}
