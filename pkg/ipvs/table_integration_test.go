//go:build integration

package ipvs

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// listLines is List rendered one line per virtual server or real server,
// sorted: two virtual servers of one key (see below) compare whatever
// order sorting left them in.
func listLines(t *testing.T, name string, table Interface) []string {
	t.Helper()
	lines, err := formatList(table)
	if err != nil {
		t.Fatalf("%s: List: %v", name, err)
	}
	return lines
}

func formatList(table Interface) ([]string, error) {
	vss, err := table.List()
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, vs := range vss {
		lines = append(lines, strings.Split(FormatVirtualServers([]VirtualServer{vs}), "\n")...)
	}
	slices.Sort(lines)
	return lines, nil
}

// listOverNetlink is List with /proc/net/ip_vs unreadable: each virtual
// server's real servers from its own netlink dump, as before the text read.
func listOverNetlink(t *testing.T, table Interface) []string {
	t.Helper()
	k := table.(*kernel)
	f, ferr := k.table, k.tableErr
	k.table, k.tableErr = nil, errors.New("forced")
	defer func() { k.table, k.tableErr = f, ferr }()
	return listLines(t, "over netlink", table)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

// An IPv6 virtual server at an IPv4-mapped address (made with ipvsadm; we
// never program one) beside the IPv4 one at that address: netlink gives
// both, unmapped (moby's dump of the IPv6 one's real servers asks for the
// wrong address and finds none); the text read must not give one's real
// servers to the other, and List gives what it gave before the text read.
func TestKernelTableReadIPv4MappedVirtualServer(t *testing.T) {
	table := newKernelTable(t)
	key := svcKey(netip.MustParseAddr("10.96.0.1"), TCP, 80)
	if err := table.AddService(rrService(key)); err != nil {
		t.Fatal(err)
	}
	if err := table.AddDestination(key, dst(netip.MustParseAddr("10.244.0.1"), 8080, 1)); err != nil {
		t.Fatal(err)
	}
	run(t, "ipvsadm", "-A", "-t", "[::ffff:10.96.0.1]:80", "-s", "rr")
	run(t, "ipvsadm", "-a", "-t", "[::ffff:10.96.0.1]:80", "-r", "[fd00::2]:8080", "-m", "-w", "3")
	want := listOverNetlink(t, table)
	if n := slices.Index(want, "TCP 10.96.0.1:80 rr flags=0x2 timeout=0"); n < 0 || n+1 >= len(want) || want[n+1] != want[n] {
		t.Fatalf("netlink gives %q, want two virtual servers at TCP 10.96.0.1:80", want)
	}
	if got := listLines(t, "text read", table); !slices.Equal(got, want) {
		t.Errorf("List =\n%s\nwant (netlink dumps)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Virtual servers in another network namespace share the kernel's hash
// table on 6.1, where the seq file's next step counts them and its start
// at each read (about a page) does not: every read after the first skips
// as many of ours as it stepped over of theirs. List stays right (the
// skipped ones are dumped one by one), only slower; the test shows how many
// the text misses.
func TestKernelTableReadBesideAnotherNamespace(t *testing.T) {
	foreign := newKernelTable(t)
	// Theirs would outlive the test in a namespace its handle keeps, and
	// skew the text read of later tests.
	t.Cleanup(func() {
		if err := foreign.Flush(); err != nil {
			t.Errorf("flush the other namespace: %v", err)
		}
	})
	for i := range 400 {
		key := svcKey(netip.AddrFrom4([4]byte{10, 97, byte(i >> 8), byte(i)}), TCP, 80)
		if err := foreign.AddService(rrService(key)); err != nil {
			t.Fatal(err)
		}
	}
	table := newKernelTable(t) // a second namespace, entered from the first
	for i := range 300 {
		key := svcKey(netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), TCP, 80)
		if err := table.AddService(rrService(key)); err != nil {
			t.Fatal(err)
		}
		for j := range 4 {
			if err := table.AddDestination(key, dst(netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 1)}), 8080, 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := listLines(t, "text read", table), listOverNetlink(t, table); !slices.Equal(got, want) {
		t.Errorf("List differs from the netlink dumps (%d lines, want %d)", len(got), len(want))
	}
	read, err := table.(*kernel).readTable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/proc/net/ip_vs gave %d of our 300 virtual servers beside 400 in another namespace; the rest are dumped one by one", len(read))
}

// Shapes the first test lacks: a firewall-mark service with real servers
// (left out of the text, dumped alone), one-packet scheduling, a real
// server on a local address (forwarding "Local") with an open connection
// through the virtual server, weight 0.
func TestKernelTableReadMoreShapes(t *testing.T) {
	table := newKernelTable(t)
	k := table.(*kernel)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.96.0.1/32", "10.244.0.1/32"} {
		addr, _ := netlink.ParseAddr(a)
		if err := netlink.AddrAdd(lo, addr); err != nil {
			t.Fatal(err)
		}
	}
	fwm := &mobyipvs.Service{FWMark: 7, AddressFamily: syscall.AF_INET, SchedName: "rr", Netmask: 0xffffffff}
	if err := k.handle.NewService(fwm); err != nil {
		t.Fatalf("fwmark service: %v", err)
	}
	if err := k.handle.NewDestination(fwm, &mobyipvs.Destination{Address: net.ParseIP("10.244.0.9").To4(), Port: 80, Weight: 1, AddressFamily: syscall.AF_INET}); err != nil {
		t.Fatalf("fwmark real server: %v", err)
	}
	ops := rrService(svcKey(netip.MustParseAddr("10.96.0.2"), UDP, 53))
	ops.Flags = 0x4 // IP_VS_SVC_F_ONEPACKET
	if err := table.AddService(ops); err != nil {
		t.Fatal(err)
	}
	if err := table.AddDestination(ops.ServiceKey, dst(netip.MustParseAddr("10.244.0.2"), 53, 0)); err != nil {
		t.Fatal(err)
	}
	// Forwarding methods we never program, a real server of the other
	// family (tunnelling allows it), persistence with a netmask.
	run(t, "ipvsadm", "-A", "-t", "10.96.0.5:80", "-s", "wrr", "-p", "60", "-M", "255.255.255.0")
	run(t, "ipvsadm", "-a", "-t", "10.96.0.5:80", "-r", "10.244.0.5:80", "-g", "-w", "5")
	run(t, "ipvsadm", "-a", "-t", "10.96.0.5:80", "-r", "10.244.0.6:80", "-i", "-w", "0")
	run(t, "ipvsadm", "-a", "-t", "10.96.0.5:80", "-r", "[fd00::5]:80", "-i", "-w", "65535")
	run(t, "ipvsadm", "-A", "-t", "[fd00::96:5]:443", "-s", "sh", "-p", "30")
	run(t, "ipvsadm", "-a", "-t", "[fd00::96:5]:443", "-r", "[fd00::244:5]:8443", "-m", "-w", "4")
	web := svcKey(netip.MustParseAddr("10.96.0.1"), TCP, 80)
	if err := table.AddService(rrService(web)); err != nil {
		t.Fatal(err)
	}
	// Not above 65535: moby reads a real server's weight as 16 bits (the
	// text has all 31), so the two reads disagree there.
	if err := table.AddDestination(web, dst(netip.MustParseAddr("10.244.0.1"), 8080, 65535)); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "10.244.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// Dialled from this thread, in the namespace.
	d := net.Dialer{Timeout: 2 * time.Second}
	if c, err := d.Dial("tcp4", "10.96.0.1:80"); err != nil {
		t.Logf("no connection through the virtual server: %v", err)
	} else {
		defer c.Close()
	}
	text, err := k.readTable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read: %v", text)
	got, want := listLines(t, "text read", table), listOverNetlink(t, table)
	if !slices.Equal(got, want) {
		t.Errorf("List =\n%s\nwant (netlink dumps)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("List:\n%s", strings.Join(got, "\n"))
}

// The table read is the namespace New was called in, from any thread, as
// the netlink socket is.
func TestKernelListFromAnotherNamespace(t *testing.T) {
	table := newKernelTable(t)
	fillVariedTable(t, table)
	want := listLines(t, "New's thread", table)
	done := make(chan struct{})
	var got []string
	var readErr error
	var read int
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread, moved, is dropped
		ns, err := netns.New()
		if err != nil {
			readErr = err
			return
		}
		defer ns.Close()
		if got, readErr = formatList(table); readErr != nil {
			return
		}
		m, err := table.(*kernel).readTable()
		read, readErr = len(m), err
	}()
	<-done
	if readErr != nil || read != 600 {
		t.Errorf("read /proc/net/ip_vs from another namespace: %d virtual servers, %v; want 600", read, readErr)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List from another namespace: %d lines, want %d", len(got), len(want))
	}
}
