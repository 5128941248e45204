package conntrack

import (
	"errors"
	"fmt"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// kernel is Interface over ctnetlink, in the network namespace of the
// calling thread.
type kernel struct {
	// filtered deletes with kernel-filtered dumps (kernelfilter.go) where
	// the kernel has them; filterIgnored is set once it showed it has not.
	filtered      bool
	filterIgnored *atomic.Bool
}

// New returns the kernel's conntrack table. It deletes the entries of up
// to maxFilteredDumps filters through dumps the kernel filters, so that the
// cost of a deletion does not grow with the entries it leaves; on a kernel
// without that (Linux < 5.8) it falls back to NewUnfiltered's whole dumps.
func New() Interface { return kernel{filtered: true, filterIgnored: &atomic.Bool{}} }

// NewUnfiltered returns the kernel's conntrack table deleting through a
// dump of the whole table of each family, matched here (what New falls back
// to; benchmarks compare the two).
func NewUnfiltered() Interface { return kernel{} }

// Delete deletes the entries of each table some filter applies to, with
// kernel-filtered dumps or one whole dump (deleteFrom). A dump the kernel
// interrupts is retried (retryInterrupted).
func (k kernel) Delete(filters []Filter) (int, error) {
	tables, err := tables(filters)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tables {
		n, err := k.deleteFrom(t)
		total += n
		if err != nil {
			return total, err
		}
	}
	klog.V(4).InfoS("Deleted conntrack entries", "filters", len(filters), "deleted", total)
	return total, nil
}

// deleteFrom deletes t's entries: one kernel-filtered dump per filter when
// there are few, else (or once the kernel ignored the filter) one dump of
// the whole table.
func (k kernel) deleteFrom(t table) (int, error) {
	if !k.filtered || len(t.filters) > maxFilteredDumps || k.filterIgnored.Load() {
		return retryInterrupted(t.op(), func() (int, error) { return dumpAndDelete(t) })
	}
	total := 0
	for i, f := range t.filters {
		kf := kernelFilter{Filter: f, family: t.family}
		op := fmt.Sprintf("delete %s conntrack entries matching %s", t.name(), f)
		n, err := retryInterrupted(op, func() (int, error) { return deleteFiltered(kf) })
		total += n
		if errors.Is(err, errFilterIgnored) {
			klog.InfoS("Conntrack dump filtering unavailable, deleting through whole-table dumps", "err", err)
			k.filterIgnored.Store(true)
			rest := table{family: t.family, filters: t.filters[i:]}
			n, err := retryInterrupted(rest.op(), func() (int, error) { return dumpAndDelete(rest) })
			return total + n, err
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// dumpAndDelete dumps the whole table of t's family and deletes the
// entries some filter of t matches (by reply tuple: deleteRequest).
func dumpAndDelete(t table) (int, error) {
	return deleteFromDump(t.family, nil, func(e Entry) (bool, error) {
		return t.matches(e), nil
	})
}
