//go:build integration

package conntrack

import (
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// insert creates a real conntrack entry with the conntrack binary: the
// reply goes from the endpoint back to the client, as after DNAT.
func insert(t *testing.T, e Entry) {
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
