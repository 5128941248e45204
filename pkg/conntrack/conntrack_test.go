package conntrack

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// testEntries are connections to two services and their endpoints.
func testEntries() []Entry {
	client, svc, pod1, pod2 := addr("10.0.0.1"), addr("10.96.0.10"), addr("10.244.1.5"), addr("10.244.1.6")
	return []Entry{
		{ProtoTCP, client, 40000, svc, 80, pod1, 8080},
		{ProtoTCP, client, 40001, svc, 80, pod2, 8080},
		{ProtoUDP, client, 40000, svc, 53, pod1, 53},
		{ProtoTCP, client, 40002, addr("10.96.0.11"), 80, pod1, 8080},
		{ProtoTCP, client, 40003, svc, 81, pod1, 9090},
		{ProtoTCP, addr("fd00::1"), 40000, addr("fd00:96::10"), 80, addr("fd00:244::5"), 8080},
		{ProtoTCP, addr("fd00::1"), 40001, addr("fd00:96::10"), 80, addr("fd00:244::6"), 8080},
	}
}

// fakeWith returns a Fake holding testEntries except those at the indexes
// in skip.
func fakeWith(skip ...int) *Fake {
	f := NewFake()
	for i, e := range testEntries() {
		if !slices.Contains(skip, i) {
			f.Add(e)
		}
	}
	return f
}

// deleteCase is filters and the entries of testEntries they delete.
type deleteCase struct {
	name    string
	filters []Filter
	gone    []int // indexes in testEntries of the entries deleted
}

func deleteCases() []deleteCase {
	return []deleteCase{{
		name:    "one endpoint of one service port",
		filters: []Filter{{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.5"), ReplySrcPort: 8080}},
		gone:    []int{0},
	}, {
		name: "zero ports and missing addresses match anything",
		filters: []Filter{
			{Protocol: ProtoTCP, ReplySrc: addr("10.244.1.5")},
			{Protocol: ProtoTCP, OrigDst: addr("fd00:96::10"), ReplySrcPort: 8080},
		},
		gone: []int{0, 3, 4, 5, 6},
	}, {
		// The kernel filter leaves IPv6 addresses to the userspace match.
		name:    "one IPv6 endpoint",
		filters: []Filter{{Protocol: ProtoTCP, OrigDst: addr("fd00:96::10"), OrigDstPort: 80, ReplySrc: addr("fd00:244::5"), ReplySrcPort: 8080}},
		gone:    []int{5},
	}, {
		// More than maxFilteredDumps filters: one whole-table dump.
		name:    "many filters",
		filters: manyFilters(),
		gone:    []int{1, 2},
	}, {
		name:    "protocol alone",
		filters: []Filter{{Protocol: ProtoUDP}},
		gone:    []int{2},
	}, {
		name: "no filters",
	}}
}

// manyFilters are more filters than maxFilteredDumps, two of them matching
// testEntries 1 and 2.
func manyFilters() []Filter {
	filters := []Filter{
		{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.6"), ReplySrcPort: 8080},
		{Protocol: ProtoUDP, OrigDst: addr("10.96.0.10"), OrigDstPort: 53, ReplySrc: addr("10.244.1.5"), ReplySrcPort: 53},
	}
	for i := range maxFilteredDumps {
		filters = append(filters, Filter{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.9.1"), ReplySrcPort: uint16(9000 + i)})
	}
	return filters
}

func TestFakeDelete(t *testing.T) {
	for _, tt := range deleteCases() {
		t.Run(tt.name, func(t *testing.T) {
			f := fakeWith()
			n, err := f.Delete(tt.filters)
			if err != nil || n != len(tt.gone) {
				t.Errorf("Delete() = %d, %v; want %d", n, err, len(tt.gone))
			}
			if got, want := f.Dump(), fakeWith(tt.gone...).Dump(); got != want {
				t.Errorf("Dump() =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestFakeDump(t *testing.T) {
	want := "tcp 10.0.0.1:40000 -> 10.96.0.10:80 reply from 10.244.1.5:8080\n" +
		"tcp 10.0.0.1:40001 -> 10.96.0.10:80 reply from 10.244.1.6:8080\n" +
		"tcp 10.0.0.1:40002 -> 10.96.0.11:80 reply from 10.244.1.5:8080\n" +
		"tcp 10.0.0.1:40003 -> 10.96.0.10:81 reply from 10.244.1.5:9090\n" +
		"tcp [fd00::1]:40000 -> [fd00:96::10]:80 reply from [fd00:244::5]:8080\n" +
		"tcp [fd00::1]:40001 -> [fd00:96::10]:80 reply from [fd00:244::6]:8080\n" +
		"udp 10.0.0.1:40000 -> 10.96.0.10:53 reply from 10.244.1.5:53\n"
	if got := fakeWith().Dump(); got != want {
		t.Errorf("Dump() =\n%s\nwant\n%s", got, want)
	}
}

func TestFakeRefusesBadFilters(t *testing.T) {
	bad := [][]Filter{
		{{OrigDst: addr("10.96.0.10")}},
		{{Protocol: ProtoTCP}, {Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), ReplySrc: addr("fd00::5")}},
	}
	for _, filters := range bad {
		f := NewFake()
		f.Add(testEntries()[0])
		if n, err := f.Delete(filters); !errors.Is(err, syscall.EINVAL) || n != 0 || len(f.Entries()) != 1 {
			t.Errorf("Delete(%v) = %d, %v (%d left); want EINVAL and nothing deleted", filters, n, err, len(f.Entries()))
		}
	}
}

func TestFakeInjectAndCalls(t *testing.T) {
	f := NewFake()
	f.Add(testEntries()[0])
	injected := errors.New("injected")
	var seen string
	f.Inject = func(op, object string) error {
		seen = op + " " + object
		return injected
	}
	filters := []Filter{{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.5")}}
	if _, err := f.Delete(filters); !errors.Is(err, injected) || len(f.Entries()) != 1 {
		t.Errorf("Delete with Inject = %v, %d left; want injected, 1 left", err, len(f.Entries()))
	}
	if want := "Delete tcp dst 10.96.0.10:80 reply-src 10.244.1.5"; seen != want {
		t.Errorf("Inject saw %q, want %q", seen, want)
	}
	if want := map[string]int{"Add": 1, "Delete": 1}; !reflect.DeepEqual(f.Calls, want) {
		t.Errorf("Calls = %v, want %v", f.Calls, want)
	}
}

func TestFilterFamily(t *testing.T) {
	tests := []struct {
		filter Filter
		want   int
	}{
		{Filter{Protocol: ProtoTCP}, 0},
		{Filter{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10")}, 4},
		{Filter{Protocol: ProtoTCP, ReplySrc: addr("::ffff:10.244.1.5")}, 4},
		{Filter{Protocol: ProtoTCP, ReplySrc: addr("fd00::5")}, 6},
	}
	for _, tt := range tests {
		if got := tt.filter.family(); got != tt.want {
			t.Errorf("%v.family() = %d, want %d", tt.filter, got, tt.want)
		}
	}
}

func TestEntryFromFlow(t *testing.T) {
	flow := &netlink.ConntrackFlow{
		Forward: netlink.IPTuple{Protocol: 6, SrcIP: net.ParseIP("10.0.0.1"), SrcPort: 40000, DstIP: net.ParseIP("10.96.0.10").To4(), DstPort: 80},
		Reverse: netlink.IPTuple{Protocol: 6, SrcIP: net.ParseIP("10.244.1.5"), SrcPort: 8080, DstIP: net.ParseIP("10.0.0.1"), DstPort: 40000},
	}
	if got, want := entryFromFlow(flow), testEntries()[0]; got != want {
		t.Errorf("entryFromFlow() = %v, want %v", got, want)
	}
}

// interruptDumps makes the fake's first n dumps interrupted (n < 0: all).
func interruptDumps(f *Fake, n int) *int {
	dumps := new(int)
	f.Inject = func(op, _ string) error {
		if op != "Dump" {
			return nil
		}
		*dumps++
		if n < 0 || *dumps <= n {
			return ErrDumpInterrupted
		}
		return nil
	}
	return dumps
}

func TestDeleteRetriesInterruptedDump(t *testing.T) {
	f := fakeWith()
	dumps := interruptDumps(f, 1)
	// Two IPv4 TCP entries reply from pod1; the interrupted dump sees one.
	n, err := f.Delete([]Filter{{Protocol: ProtoTCP, ReplySrc: addr("10.244.1.5"), ReplySrcPort: 8080}})
	if err != nil || n != 2 || *dumps != 2 {
		t.Errorf("Delete() = %d, %v after %d dumps; want 2, nil after 2 dumps", n, err, *dumps)
	}
	if got, want := f.Dump(), fakeWith(0, 3).Dump(); got != want {
		t.Errorf("Dump() =\n%s\nwant\n%s", got, want)
	}
}

func TestDeleteGivesUpOnAlwaysInterruptedDump(t *testing.T) {
	f := fakeWith()
	dumps := interruptDumps(f, -1)
	n, err := f.Delete([]Filter{{Protocol: ProtoTCP, OrigDst: addr("fd00:96::10")}})
	want := "delete conntrack entries from the ipv6 table (1 filters): dump interrupted 5 times in a row: results may be incomplete or inconsistent"
	if err == nil || err.Error() != want || !errors.Is(err, ErrDumpInterrupted) || !errors.Is(err, syscall.EINTR) {
		t.Errorf("Delete() error = %v, want %q (ErrDumpInterrupted, EINTR)", err, want)
	}
	// Each interrupted pass deletes half of what is left: 1 of 2, then 0 of 1.
	if n != 1 || *dumps != 5 || len(f.Entries()) != len(testEntries())-1 {
		t.Errorf("Delete() = %d after %d dumps, %d entries left; want 1 after 5, %d left", n, *dumps, len(f.Entries()), len(testEntries())-1)
	}
}

func TestDeleteDoesNotRetryOtherDumpErrors(t *testing.T) {
	f := fakeWith()
	dumps := 0
	f.Inject = func(op, _ string) error {
		if op == "Dump" {
			dumps++
			return syscall.ENOBUFS
		}
		return nil
	}
	_, err := f.Delete([]Filter{{Protocol: ProtoUDP}})
	want := "delete conntrack entries from the ipv4 table (1 filters): no buffer space available"
	if err == nil || err.Error() != want || dumps != 1 {
		t.Errorf("Delete() error = %v after %d dumps, want %q after 1", err, dumps, want)
	}
}

// entryFromFlow reads the fields Entry keeps from a flow of the netlink
// library (the integration tests list the kernel's table with it).
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

// docs/kep/README.md's conntrack section gives the filters deleted through
// kernel-filtered dumps: up to 8 per family.
func TestMaxFilteredDumpsIsTheDocumentedNumber(t *testing.T) {
	if maxFilteredDumps != 8 {
		t.Errorf("maxFilteredDumps = %d; docs/kep/README.md says up to 8 filters", maxFilteredDumps)
	}
}
