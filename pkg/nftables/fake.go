package nftables

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
)

// Fake is an in-memory Interface: a set of tables per family.
type Fake struct {
	// Inject, when set, is called before every mutating operation with the
	// method name and the table ("ip kube-proxy"); an error fails it.
	Inject func(op, object string) error

	mu     sync.Mutex
	tables map[string]bool
}

var _ Interface = &Fake{}

// NewFake returns a Fake holding the given tables ("ip kube-proxy").
func NewFake(tables ...string) *Fake {
	f := &Fake{tables: map[string]bool{}}
	for _, t := range tables {
		f.tables[t] = true
	}
	return f
}

func (f *Fake) DeleteTable(family Family, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := family.String() + " " + name
	if f.Inject != nil {
		if err := f.Inject("DeleteTable", key); err != nil {
			return fmt.Errorf("delete nftables table %s: %w", key, err)
		}
	}
	if !f.tables[key] {
		return fmt.Errorf("delete nftables table %s: %w", key, syscall.ENOENT)
	}
	delete(f.tables, key)
	return nil
}

// Tables lists the tables left, sorted.
func (f *Fake) Tables() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.tables {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
