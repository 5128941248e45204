package ipset

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink/nl"
)

// Fake is an in-memory Interface as strict as the kernel: it checks entries
// against their set's type and family and returns the same errnos. It does
// not know about iptables references, so it never refuses DestroySet with
// EBUSY.
type Fake struct {
	// Inject, when set, is called before every mutating operation with the
	// method name and the object; an error fails the operation unchanged.
	Inject func(op, object string) error
	// Calls counts the calls of each method.
	Calls map[string]int

	mu   sync.Mutex
	sets map[string]*fakeSet
}

type fakeSet struct {
	Set
	entries map[Entry]bool
}

var _ Interface = &Fake{}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{Calls: map[string]int{}, sets: map[string]*fakeSet{}}
}

// begin counts the call and runs the injected fault, with f.mu held.
func (f *Fake) begin(op, object string) error {
	return f.beginNamed(op, func() string { return object })
}

// beginNamed is begin naming the object only for Inject: a first sync adds
// tens of thousands of members, and the kernel names none.
func (f *Fake) beginNamed(op string, object func() string) error {
	f.Calls[op]++
	if f.Inject != nil && op != "List" {
		return f.Inject(op, object())
	}
	return nil
}

// List reads like the kernel's: with keep, the names first, then each kept
// set that still exists; keep runs without the Fake's lock.
func (f *Fake) List(keep func(name string) bool) ([]Contents, error) {
	f.mu.Lock()
	f.Calls["List"]++
	names := f.sortedNames()
	f.mu.Unlock()
	if keep != nil {
		names = slices.DeleteFunc(names, func(name string) bool { return !keep(name) })
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Contents
	for _, name := range names {
		if s := f.sets[name]; s != nil {
			out = append(out, Contents{Set: s.Set, Entries: sortedEntries(s.entries)})
		}
	}
	return out, nil
}

func (f *Fake) CreateSet(s Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("CreateSet", s.Name); err != nil {
		return err
	}
	s, err := validateSet(s)
	if err != nil {
		return fmt.Errorf("create ip set %s: %w", s.Name, err)
	}
	if f.sets[s.Name] != nil {
		return fmt.Errorf("create ip set %s: %w", s.Name, syscall.EEXIST)
	}
	f.sets[s.Name] = &fakeSet{Set: s, entries: map[Entry]bool{}}
	return nil
}

func (f *Fake) DestroySet(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin("DestroySet", name); err != nil {
		return err
	}
	if f.sets[name] == nil {
		return fmt.Errorf("destroy ip set %s: %w", name, syscall.ENOENT)
	}
	delete(f.sets, name)
	return nil
}

func (f *Fake) AddEntry(set string, e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginNamed("AddEntry", func() string { return set + " " + e.String() }); err != nil {
		return err
	}
	s, e, err := f.member(set, e)
	if err == nil && s.entries[e] {
		err = ipsetError{code: nl.IPSET_ERR_EXIST, errno: syscall.EEXIST}
	}
	if err != nil {
		return fmt.Errorf("add %s to ip set %s: %w", e, set, err)
	}
	s.entries[e] = true
	return nil
}

func (f *Fake) DeleteEntry(set string, e Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.beginNamed("DeleteEntry", func() string { return set + " " + e.String() }); err != nil {
		return err
	}
	s, e, err := f.member(set, e)
	if err == nil && !s.entries[e] {
		err = ipsetError{code: nl.IPSET_ERR_EXIST, errno: syscall.ENOENT}
	}
	if err != nil {
		return fmt.Errorf("delete %s from ip set %s: %w", e, set, err)
	}
	delete(s.entries, e)
	return nil
}

// member finds the set and validates e against it.
func (f *Fake) member(set string, e Entry) (*fakeSet, Entry, error) {
	s := f.sets[set]
	if s == nil {
		return nil, e, syscall.ENOENT
	}
	e, err := validateEntry(s.Set, e)
	return s, e, err
}

// Dump writes every set, sorted by name, as "set NAME TYPE FAMILY" (or
// "set NAME bitmap:port range FROM-TO") followed by its entries, sorted, in
// ipset syntax, indented.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range f.sortedNames() {
		s := f.sets[name]
		if s.Type == BitmapPort {
			fmt.Fprintf(&b, "set %s %s range %s\n", s.Name, s.Type, s.PortRange)
		} else {
			fmt.Fprintf(&b, "set %s %s %s\n", s.Name, s.Type, s.Family)
		}
		for _, e := range sortedEntries(s.entries) {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

func (f *Fake) sortedNames() []string {
	names := make([]string, 0, len(f.sets))
	for name := range f.sets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// sortedEntries orders entries field by field (ports numerically).
func sortedEntries(entries map[Entry]bool) []Entry {
	var out []Entry // nil when empty, as the kernel's List reads it
	for e := range entries {
		out = append(out, e)
	}
	slices.SortFunc(out, compareEntries)
	return out
}

// compareEntries orders entries by address, network, protocol, port and
// second address.
func compareEntries(a, b Entry) int {
	if c := a.IP.Compare(b.IP); c != 0 {
		return c
	}
	if c := a.Net.Addr().Compare(b.Net.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Net.Bits(), b.Net.Bits()); c != 0 {
		return c
	}
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return a.IP2.Compare(b.IP2)
}
