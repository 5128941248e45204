package conntrack

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// kernel is Interface over ctnetlink, in the network namespace of the
// calling thread.
type kernel struct{}

// New returns the kernel's conntrack table.
func New() Interface { return kernel{} }

// Delete dumps the table of each family some filter applies to and deletes
// the matching entries (vishvananda/netlink ConntrackDeleteFilters). The
// library's ConntrackFilter cannot match the reply source port, so the
// filters are matched by flowFilter.
func (kernel) Delete(filters []Filter) (int, error) {
	byFamily := map[netlink.InetFamily][]netlink.CustomConntrackFilter{}
	for _, f := range filters {
		if err := f.check(); err != nil {
			return 0, err
		}
		if fam := f.family(); fam != 6 {
			byFamily[unix.AF_INET] = append(byFamily[unix.AF_INET], flowFilter(f))
		}
		if fam := f.family(); fam != 4 {
			byFamily[unix.AF_INET6] = append(byFamily[unix.AF_INET6], flowFilter(f))
		}
	}
	total := 0
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if len(byFamily[family]) == 0 {
			continue
		}
		n, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, family, byFamily[family]...)
		total += int(n)
		if err != nil {
			return total, fmt.Errorf("delete conntrack entries (family %d, %d filters): %w", family, len(byFamily[family]), err)
		}
	}
	klog.V(4).InfoS("Deleted conntrack entries", "filters", len(filters), "deleted", total)
	return total, nil
}

// flowFilter matches kernel flows with a Filter.
type flowFilter Filter

func (f flowFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	return Filter(f).matches(entryFromFlow(flow))
}

// entryFromFlow reads the fields Entry keeps from a kernel flow.
func entryFromFlow(flow *netlink.ConntrackFlow) Entry {
	addr := func(b []byte) netip.Addr {
		a, _ := netip.AddrFromSlice(b)
		return a.Unmap()
	}
	return Entry{
		Protocol:     flow.Forward.Protocol,
		OrigSrc:      addr(flow.Forward.SrcIP),
		OrigSrcPort:  flow.Forward.SrcPort,
		OrigDst:      addr(flow.Forward.DstIP),
		OrigDstPort:  flow.Forward.DstPort,
		ReplySrc:     addr(flow.Reverse.SrcIP),
		ReplySrcPort: flow.Reverse.SrcPort,
	}
}
