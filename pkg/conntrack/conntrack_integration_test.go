//go:build integration

package conntrack

import (
	"encoding/binary"
	"flag"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// insert creates a real conntrack entry with the conntrack binary: the
// reply goes from the endpoint back to the client, as after DNAT; extra
// are more of its flags (a zone).
func insert(t *testing.T, e Entry, extra ...string) {
	t.Helper()
	args := []string{"-I", "-p", protocolName(e.Protocol),
		"-s", e.OrigSrc.String(), "-d", e.OrigDst.String(),
		"--sport", strconv.Itoa(int(e.OrigSrcPort)), "--dport", strconv.Itoa(int(e.OrigDstPort)),
		"-r", e.ReplySrc.String(), "-q", e.OrigSrc.String(),
		"--reply-port-src", strconv.Itoa(int(e.ReplySrcPort)), "--reply-port-dst", strconv.Itoa(int(e.OrigSrcPort)),
		"-t", "300"}
	if e.Protocol == ProtoTCP {
		args = append(args, "--state", "ESTABLISHED", "-u", "SEEN_REPLY")
	}
	args = append(args, extra...)
	if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
		t.Fatalf("conntrack %v: %v: %s", args, err, out)
	}
}

// kernelEntries reads the namespace's conntrack table, both families.
func kernelEntries(t *testing.T) []Entry {
	t.Helper()
	var entries []Entry
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, family)
		if err != nil {
			t.Fatalf("list conntrack table: %v", err)
		}
		for _, flow := range flows {
			entries = append(entries, entryFromFlow(flow))
		}
	}
	slices.SortFunc(entries, compareEntries)
	return entries
}

// kernels are both kernel implementations: filtered dumps (New) and
// whole-table dumps (NewUnfiltered, New's fallback).
func kernels() map[string]func() Interface {
	return map[string]func() Interface{"filtered": New, "unfiltered": NewUnfiltered}
}

func TestKernelDelete(t *testing.T) {
	for impl, newKernel := range kernels() {
		for _, tc := range deleteCases() {
			t.Run(impl+"/"+tc.name, func(t *testing.T) { testKernelDelete(t, newKernel(), tc) })
		}
	}
}

// testKernelDelete fills a new namespace's table with testEntries, deletes
// with tc's filters, and compares the table with the fake's after the same.
func testKernelDelete(t *testing.T, k Interface, tc deleteCase) {
	nettest.EnterNewNetns(t)
	for _, e := range testEntries() {
		insert(t, e)
	}
	if got, want := kernelEntries(t), fakeWith().Entries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("table after inserts:\n%v\nwant\n%v", got, want)
	}
	fake := fakeWith()
	n, err := k.Delete(tc.filters)
	fakeN, _ := fake.Delete(tc.filters)
	if err != nil || n != len(tc.gone) || n != fakeN {
		t.Errorf("Delete() = %d, %v; want %d (the fake deleted %d)", n, err, len(tc.gone), fakeN)
	}
	if got, want := kernelEntries(t), fake.Entries(); !reflect.DeepEqual(got, want) {
		t.Errorf("kernel table after Delete:\n%v\nfake:\n%v", got, want)
	}
	if out, err := exec.Command("conntrack", "-L", "-f", "ipv4").CombinedOutput(); err == nil {
		t.Logf("conntrack -L:\n%s", out)
	}
}

// TestKernelDeleteSparesReopenedEntry deletes an entry as dumped before
// its client re-opened the tuple towards another endpoint (a TIME_WAIT
// entry re-opened by a new SYN from the same port, after its real server
// was deleted): the new entry must stay. The kernel often gives the new
// entry the old one's id (Linux 6.1's nf_ct_get_id hashes the entry's
// address and original tuple, and on one CPU the new entry takes the slot
// the old one freed), so the id alone does not protect it.
func TestKernelDeleteSparesReopenedEntry(t *testing.T) {
	nettest.EnterNewNetns(t)
	pinToOneCPU(t)
	old := Entry{ProtoTCP, addr("192.168.50.2"), 40003, addr("10.96.0.10"), 80, addr("10.244.0.10"), 8080}
	reopened := old
	reopened.ReplySrc = addr("10.244.0.11")
	const rounds = 20
	sameID := 0
	for range rounds {
		insert(t, old)
		msg, oldID := dumpOnly(t)
		remove(t, old)
		insert(t, reopened)
		_, newID := dumpOnly(t)
		if newID == oldID {
			sameID++
		}
		if deleted, err := deleteMessage(unix.AF_INET, msg); err != nil || deleted {
			t.Fatalf("delete the dumped entry %s = %v, %v; want false (it was gone), nil", old, deleted, err)
		}
		if got := kernelEntries(t); !reflect.DeepEqual(got, []Entry{reopened}) {
			t.Fatalf("after deleting the dumped entry %s (id %d), the table holds %v; want the re-opened entry (id %d) alone", old, oldID, got, newID)
		}
		remove(t, reopened)
	}
	t.Logf("the re-opened entry had the old one's id in %d of %d rounds", sameID, rounds)
}

// TestKernelDeleteCountsOnlyItsDeletions deletes two dumped entries, one of
// which something else deleted between the dump and the deletion (the
// kernel's expire_nodest_conn work often does): it is no error, and the
// count is of the entry this call deleted (the count goes to the log and
// the conntrack metric).
func TestKernelDeleteCountsOnlyItsDeletions(t *testing.T) {
	nettest.EnterNewNetns(t)
	gone := Entry{ProtoTCP, addr("192.168.50.2"), 40003, addr("10.96.0.10"), 80, addr("10.244.0.10"), 8080}
	kept := gone
	kept.OrigSrcPort = 40004
	insert(t, gone)
	insert(t, kept)
	n, err := deleteFromDump(unix.AF_INET, nil, func(e Entry) (bool, error) {
		if e == gone {
			remove(t, gone) // deleted by someone else, after the dump
		}
		return true, nil
	})
	if err != nil || n != 1 {
		t.Errorf("deleteFromDump() = %d, %v; want 1 (the other entry was already gone), nil", n, err)
	}
	if got := kernelEntries(t); len(got) != 0 {
		t.Errorf("table after the deletion: %v; want empty", got)
	}
}

// TestKernelDeleteInZones deletes entries of conntrack zones: the same
// tuples in zone 0 and zone 5, one entry in a zone of its original
// direction and one in a zone of its reply direction. Each is deleted in
// its own zone (the deletion carries CTA_ZONE, and the reply tuple its
// CTA_TUPLE_ZONE) and counted once; an entry of zone 5 to another
// endpoint stays.
func TestKernelDeleteInZones(t *testing.T) {
	for impl, newKernel := range kernels() {
		t.Run(impl, func(t *testing.T) {
			nettest.EnterNewNetns(t)
			e := Entry{ProtoTCP, addr("192.168.50.2"), 40003, addr("10.96.0.10"), 80, addr("10.244.0.10"), 8080}
			origZone, replyZone, spare := e, e, e
			origZone.OrigSrcPort, replyZone.OrigSrcPort = 40004, 40005
			spare.OrigSrcPort, spare.ReplySrc = 40006, addr("10.244.0.11")
			insert(t, e)
			insert(t, e, "-w", "5")
			insert(t, origZone, "--orig-zone", "7")
			insert(t, replyZone, "--reply-zone", "9")
			insert(t, spare, "-w", "5")
			if got := len(kernelEntries(t)); got != 5 {
				t.Fatalf("%d entries after the inserts, want 5", got)
			}
			n, err := newKernel().Delete([]Filter{{Protocol: ProtoTCP, OrigDst: e.OrigDst, OrigDstPort: 80, ReplySrc: e.ReplySrc, ReplySrcPort: 8080}})
			if err != nil || n != 4 {
				t.Errorf("Delete() = %d, %v; want 4", n, err)
			}
			if got := kernelEntries(t); !reflect.DeepEqual(got, []Entry{spare}) {
				t.Errorf("table after Delete: %v; want %v alone", got, spare)
			}
			if out, err := exec.Command("conntrack", "-L", "-f", "ipv4").CombinedOutput(); err == nil {
				t.Logf("conntrack -L:\n%s", out)
			}
		})
	}
}

// pinToOneCPU keeps the test's thread (and the conntrack commands it
// starts) on CPU 0 until the test ends.
func pinToOneCPU(t *testing.T) {
	t.Helper()
	var was, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatalf("sched_setaffinity: %v", err)
	}
	t.Cleanup(func() { _ = unix.SchedSetaffinity(0, &was) })
}

// remove deletes an entry with the conntrack binary.
func remove(t *testing.T, e Entry) {
	t.Helper()
	args := []string{"-D", "-p", protocolName(e.Protocol), "-s", e.OrigSrc.String(), "-d", e.OrigDst.String(),
		"--sport", strconv.Itoa(int(e.OrigSrcPort)), "--dport", strconv.Itoa(int(e.OrigDstPort))}
	if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
		t.Fatalf("conntrack %v: %v: %s", args, err, out)
	}
}

// dumpOnly dumps the IPv4 table, which must hold one entry, and returns
// its message and id.
func dumpOnly(t *testing.T) ([]byte, uint32) {
	t.Helper()
	msgs, err := conntrackRequest(nl.IPCTNL_MSG_CT_GET, unix.NLM_F_DUMP, unix.AF_INET).Execute(unix.NETLINK_NETFILTER, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("dump: %d entries, %v; want 1", len(msgs), err)
	}
	attrs, err := nl.ParseRouteAttr(msgs[0][nfgenmsgLen:])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK == nl.CTA_ID && len(a.Value) == 4 {
			return msgs[0], binary.BigEndian.Uint32(a.Value)
		}
	}
	t.Fatal("dumped entry without CTA_ID")
	return nil, 0
}

// TestKernelRefusesBadFilters checks that the kernel implementation
// refuses what the fake refuses, before touching the table.
func TestKernelRefusesBadFilters(t *testing.T) {
	nettest.EnterNewNetns(t)
	insert(t, testEntries()[0])
	bad := []Filter{{Protocol: ProtoTCP}, {Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), ReplySrc: addr("fd00::5")}}
	_, ferr := fakeWith().Delete(bad)
	for impl, newKernel := range kernels() {
		n, kerr := newKernel().Delete(bad)
		if kerr == nil || ferr == nil || n != 0 || len(kernelEntries(t)) != 1 {
			t.Errorf("%s Delete(%v): kernel %d, %v; fake %v; want both to refuse", impl, bad, n, kerr, ferr)
		}
	}
}

var deleteCostEntries = flag.String("deletecost.entries", "", "TestKernelDeleteCost: table sizes, comma-separated; empty skips it")

// TestKernelDeleteCost times the deletion of one endpoint's 10 flows with
// both implementations while the table holds N unrelated entries (the
// flush alone; pkg/proxy/ipvs TestKernelFlushCost times the sync too). It
// needs nf_conntrack_max above the largest size.
func TestKernelDeleteCost(t *testing.T) {
	if *deleteCostEntries == "" {
		t.Skip("no -deletecost.entries")
	}
	nettest.EnterNewNetns(t)
	filled := 0
	for _, s := range strings.Split(*deleteCostEntries, ",") {
		size, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		var flows []nettest.Flow
		for i := filled; i < size; i++ {
			client := netip.AddrFrom4([4]byte{172, 16, byte(i / 50000 >> 8), byte(i / 50000)})
			flows = append(flows, nettest.Flow{Client: netip.AddrPortFrom(client, uint16(10000+i%50000)),
				Service: netip.MustParseAddrPort("10.250.0.1:443"), Endpoint: netip.MustParseAddrPort("10.251.0.1:8443")})
		}
		start := time.Now()
		nettest.FillConntrack(t, flows)
		t.Logf("%d entries (filled in %.1f s)", size, time.Since(start).Seconds())
		filled = size
		for round := range 3 {
			for impl, newKernel := range kernels() {
				var own []nettest.Flow
				for i := range 10 {
					own = append(own, nettest.Flow{Client: netip.AddrPortFrom(addr("192.168.50.2"), uint16(20000+round*10+i)),
						Service: netip.MustParseAddrPort("10.96.0.10:80"), Endpoint: netip.MustParseAddrPort("10.244.0.10:8080")})
				}
				nettest.FillConntrack(t, own)
				start := time.Now()
				n, err := newKernel().Delete([]Filter{{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.0.10"), ReplySrcPort: 8080}})
				t.Logf("DELETE-COST entries=%d impl=%s seconds=%.6f deleted=%d err=%v", size, impl, time.Since(start).Seconds(), n, err)
				if err != nil || n != 10 {
					t.Errorf("%s at %d entries: deleted %d, %v; want 10", impl, size, n, err)
				}
			}
		}
	}
}
