package sysctl

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake holds a fixed set of sysctls: like the kernel, it reads and writes
// only the ones that exist (NewFake's), ENOENT for any other.
type Fake struct {
	// Inject, when set, is called before every Set with "Set" and the
	// sysctl name. A non-nil error fails the call without a change. It
	// must not call the Fake.
	Inject func(op, object string) error
	// Calls counts the calls of every Interface method, by name.
	Calls map[string]int

	mu     sync.Mutex
	values map[string]int
}

var _ Interface = (*Fake)(nil)

// NewFake returns a Fake holding the initial sysctls (copied).
func NewFake(initial map[string]int) *Fake {
	values := maps.Clone(initial)
	if values == nil {
		values = map[string]int{}
	}
	return &Fake{Calls: map[string]int{}, values: values}
}

func (f *Fake) Get(name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["Get"]++
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("read sysctl: %w", err)
	}
	value, ok := f.values[name]
	if !ok {
		return 0, fmt.Errorf("read sysctl %s: %w", name, syscall.ENOENT)
	}
	return value, nil
}

func (f *Fake) Set(name string, value int) error {
	f.mu.Lock()
	f.Calls["Set"]++
	inject := f.Inject
	f.mu.Unlock()
	if inject != nil {
		if err := inject("Set", name); err != nil {
			return fmt.Errorf("write sysctl %s = %d: %w", name, value, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := checkName(name); err != nil {
		return fmt.Errorf("write sysctl: %w", err)
	}
	if _, ok := f.values[name]; !ok {
		return fmt.Errorf("write sysctl %s: %w", name, syscall.ENOENT)
	}
	f.values[name] = value
	return nil
}

// Dump lists "name = value" lines sorted by name.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.values)) {
		fmt.Fprintf(&b, "%s = %d\n", name, f.values[name])
	}
	return b.String()
}
