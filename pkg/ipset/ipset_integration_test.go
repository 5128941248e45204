//go:build integration

package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// errClass names the errno an error carries, for comparing the kernel's
// answers with the fake's.
func errClass(err error) string {
	if err == nil {
		return "ok"
	}
	for _, errno := range []syscall.Errno{syscall.EEXIST, syscall.ENOENT, syscall.EINVAL, syscall.EBUSY} {
		if errors.Is(err, errno) {
			return errno.Error()
		}
	}
	return "other"
}

// step is one operation run against both the kernel and the fake.
type step struct {
	name string
	do   func(Interface) error
}

// scenario exercises one set type: creation, duplicates, invalid entries,
// missing objects.
func scenario(tc typeCase) []step {
	name, e := tc.set.Name, tc.entry
	steps := []step{
		{"create", func(i Interface) error { return i.CreateSet(tc.set) }},
		{"create again", func(i Interface) error { return i.CreateSet(tc.set) }},
		{"delete missing entry", func(i Interface) error { return i.DeleteEntry(name, e) }},
		{"add", func(i Interface) error { return i.AddEntry(name, e) }},
		{"add again", func(i Interface) error { return i.AddEntry(name, e) }},
		{"add to missing set", func(i Interface) error { return i.AddEntry("missing", e) }},
		{"delete from missing set", func(i Interface) error { return i.DeleteEntry("missing", e) }},
		{"destroy missing set", func(i Interface) error { return i.DestroySet("missing") }},
	}
	for _, bad := range append(invalidEntries(tc), extraFieldEntries(tc)...) {
		steps = append(steps, step{"add invalid " + fmt.Sprintf("%#v", bad), func(i Interface) error { return i.AddEntry(name, bad) }})
	}
	return steps
}

// extraFieldEntries are entries with a field the set type does not have.
func extraFieldEntries(tc typeCase) []Entry {
	e := tc.entry
	switch tc.set.Type {
	case HashIP:
		return []Entry{{IP: e.IP, Protocol: "tcp", Port: 80}}
	case HashNet:
		return []Entry{{Net: e.Net, Protocol: "tcp", Port: 80}}
	case HashIPPort:
		return []Entry{{IP: e.IP, Protocol: "tcp", Port: 80, IP2: e.IP}}
	case BitmapPort:
		return []Entry{{Port: e.Port, Protocol: "tcp"}, {Port: 70}}
	}
	return nil
}

func TestKernelErrnoParity(t *testing.T) {
	cases := append(typeCases(), typeCase{Set{Name: "ports", Type: BitmapPort, PortRange: "30000-32767"}, Entry{Port: 30080}})
	for _, tc := range cases {
		t.Run(tc.set.Name, func(t *testing.T) {
			nettest.EnterNewNetns(t)
			kernel, fake := New(), NewFake()
			for _, s := range scenario(tc) {
				kerr, ferr := s.do(kernel), s.do(fake)
				if errClass(kerr) != errClass(ferr) {
					t.Errorf("%s: kernel said %v, fake said %v", s.name, kerr, ferr)
				}
			}
			klist, kerr := kernel.List(nil)
			flist, _ := fake.List(nil)
			if kerr != nil || !reflect.DeepEqual(normalise(klist), flist) {
				t.Errorf("kernel List() = %+v, %v; fake List() = %+v", klist, kerr, flist)
			}
			for _, s := range []step{
				{"delete", func(i Interface) error { return i.DeleteEntry(tc.set.Name, tc.entry) }},
				{"delete again", func(i Interface) error { return i.DeleteEntry(tc.set.Name, tc.entry) }},
				{"destroy", func(i Interface) error { return i.DestroySet(tc.set.Name) }},
				{"destroy again", func(i Interface) error { return i.DestroySet(tc.set.Name) }},
			} {
				kerr, ferr := s.do(kernel), s.do(fake)
				if errClass(kerr) != errClass(ferr) {
					t.Errorf("%s: kernel said %v, fake said %v", s.name, kerr, ferr)
				}
			}
		})
	}
}

// TestKernelListRoundTrip creates a set of every type and family with
// several entries and reads them back: all in one List, each family's with
// keep, and the same as the library reads them (List before our parser).
func TestKernelListRoundTrip(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	want := typeContents()
	for _, c := range want {
		create(t, kernel, c)
	}
	checkList(t, kernel, want, true)
	if out, err := exec.Command("ipset", "list").CombinedOutput(); err == nil {
		t.Logf("ipset list:\n%s", out)
	}
}

// TestKernelListLargeSets reads sets of 20k and 5k members, which the
// kernel dumps in many messages, of both families, among small ones. (Not
// compared with the library's reading: at 40k members that took 26 s in
// the VM, and the fill 22 s.)
func TestKernelListLargeSets(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	const n, n6 = 20000, 5000
	big4 := Contents{Set: Set{Name: "big4", Type: HashIPPort, Family: Inet}}
	big6 := Contents{Set: Set{Name: "big6", Type: HashIPPortIP, Family: Inet6}}
	ip4, ip6 := netip.MustParseAddr("10.0.0.0"), netip.MustParseAddr("fd00::")
	for i := range n {
		ip4, ip6 = ip4.Next(), ip6.Next()
		big4.Entries = append(big4.Entries, Entry{IP: ip4, Protocol: "tcp", Port: uint16(80 + i%2)})
		if i < n6 {
			big6.Entries = append(big6.Entries, Entry{IP: ip6, Protocol: "udp", Port: 53, IP2: ip6})
		}
	}
	small := typeContents()
	for _, c := range small {
		create(t, kernel, c)
	}
	for _, c := range []Contents{big4, big6} {
		restore(t, kernel, c)
	}
	checkList(t, kernel, append(append([]Contents{big4}, small...), big6), false)
}

// restore creates c's set and adds its members with one ipset restore (a
// request per member takes a minute in the VM), or one by one without the
// ipset command.
func restore(t testing.TB, kernel Interface, c Contents) {
	t.Helper()
	if _, err := exec.LookPath("ipset"); err != nil {
		create(t, kernel, c)
		return
	}
	if err := kernel.CreateSet(c.Set); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, e := range c.Entries {
		fmt.Fprintf(&in, "add %s %s\n", c.Name, e)
	}
	cmd := exec.Command("ipset", "restore")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ipset restore: %v: %s", err, out)
	}
}

// BenchmarkKernelList reads a hash:ip,port set of 5k members, and 5k
// members of another family's set, with List (all, and this family's with
// keep) and with the library as List did before.
func BenchmarkKernelList(b *testing.B) {
	nettest.EnterNewNetns(b)
	list := New()
	const n = 5000
	ours := Contents{Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: Inet}}
	other := Contents{Set: Set{Name: "KUBE-6-CLUSTER-IP", Type: HashIPPort, Family: Inet6}}
	ip4, ip6 := netip.MustParseAddr("10.96.0.0"), netip.MustParseAddr("fd00::")
	for i := range n {
		ip4, ip6 = ip4.Next(), ip6.Next()
		ours.Entries = append(ours.Entries, Entry{IP: ip4, Protocol: "tcp", Port: uint16(80 + i%3)})
		other.Entries = append(other.Entries, Entry{IP: ip6, Protocol: "tcp", Port: uint16(80 + i%3)})
	}
	restore(b, list, ours)
	restore(b, list, other)
	k := list.(*kernel)
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if results, err := k.handle.IpsetListAll(); err != nil || len(mergeResults(results)) != 2 {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours-all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if sets, err := k.List(nil); err != nil || len(sets) != 2 {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours-keep", func(b *testing.B) {
		b.ReportAllocs()
		keep := func(name string) bool { return name == ours.Name }
		for b.Loop() {
			if sets, err := k.List(keep); err != nil || len(sets) != 1 {
				b.Fatal(err)
			}
		}
	})
}

// TestKernelListSetDestroyedWhileListing: a set destroyed between the
// headers and its members is absent, the others are read.
func TestKernelListSetDestroyedWhileListing(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	all := typeContents()
	for _, c := range all {
		create(t, kernel, c)
	}
	got, err := kernel.List(func(name string) bool {
		if name == "ipport4" {
			if err := kernel.DestroySet(name); err != nil {
				t.Errorf("DestroySet(%s) from keep: %v", name, err)
			}
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(all), func(c Contents) bool { return c.Name == "ipport4" })
	if !reflect.DeepEqual(normalise(got), normalise(want)) {
		t.Errorf("List() =\n%+v\nwant\n%+v", got, want)
	}
	// The socket is still in step: the next List reads the same.
	if again, err := kernel.List(nil); err != nil || !reflect.DeepEqual(normalise(again), normalise(want)) {
		t.Errorf("List(nil) after = %+v, %v; want %+v", again, err, want)
	}
}

// create creates c's set with its members.
func create(t testing.TB, kernel Interface, c Contents) {
	t.Helper()
	if err := kernel.CreateSet(c.Set); err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Entries {
		if err := kernel.AddEntry(c.Name, e); err != nil {
			t.Fatal(err)
		}
	}
}

// checkList checks that List reads want: all sets, each family's with
// keep, none with a keep that refuses all; and with library, that the
// library reads the same.
func checkList(t *testing.T, list Interface, want []Contents, library bool) {
	t.Helper()
	got, err := list.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameContents(got, want) {
		t.Errorf("List(nil) =\n%s\nwant\n%s", summary(got), summary(want))
	}
	for _, family := range []Family{Inet, Inet6} {
		keep := func(name string) bool {
			for _, c := range want {
				if c.Name == name {
					return c.Family == family
				}
			}
			return false
		}
		got, err := list.List(keep)
		if err != nil {
			t.Fatal(err)
		}
		wantFamily := slices.DeleteFunc(slices.Clone(want), func(c Contents) bool { return c.Family != family })
		if !sameContents(got, wantFamily) {
			t.Errorf("List(%s) =\n%s\nwant\n%s", family, summary(got), summary(wantFamily))
		}
	}
	if got, err := list.List(func(string) bool { return false }); err != nil || len(got) != 0 {
		t.Errorf("List(none) = %s, %v; want nothing", summary(got), err)
	}
	if !library {
		return
	}
	k := list.(*kernel)
	results, err := k.handle.IpsetListAll()
	if err != nil {
		t.Fatal(err)
	}
	if lib := mergeResults(results); !reflect.DeepEqual(got, lib) {
		t.Errorf("List(nil) =\n%s\nthe library read\n%s", summary(got), summary(lib))
	}
}

// normalise sorts sets by name and entries by text.
func normalise(sets []Contents) []Contents {
	out := slices.Clone(sets)
	slices.SortFunc(out, func(a, b Contents) int { return strings.Compare(a.Name, b.Name) })
	for i := range out {
		out[i].Entries = slices.Clone(out[i].Entries)
		slices.SortFunc(out[i].Entries, compareEntries)
	}
	return out
}

// sameContents compares sets and members in any order.
func sameContents(a, b []Contents) bool {
	return reflect.DeepEqual(normalise(a), normalise(b))
}

// summary describes sets briefly: headers, member counts, first members.
func summary(sets []Contents) string {
	var b strings.Builder
	for _, c := range normalise(sets) {
		fmt.Fprintf(&b, "%+v: %d members %v\n", c.Set, len(c.Entries), c.Entries[:min(3, len(c.Entries))])
	}
	return b.String()
}

// TestKernelDestroyReferencedSet checks that a set an iptables rule uses
// cannot be destroyed (EBUSY), which the fake does not model.
func TestKernelDestroyReferencedSet(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables binary")
	}
	nettest.EnterNewNetns(t)
	kernel := New()
	if err := kernel.CreateSet(Set{Name: "used", Type: HashIP, Family: Inet}); err != nil {
		t.Fatal(err)
	}
	rule := []string{"INPUT", "-m", "set", "--match-set", "used", "src", "-j", "ACCEPT"}
	if out, err := exec.Command("iptables", append([]string{"-A"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	if err := kernel.DestroySet("used"); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("DestroySet(used) = %v, want EBUSY", err)
	}
	if out, err := exec.Command("iptables", append([]string{"-D"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	if err := kernel.DestroySet("used"); err != nil {
		t.Errorf("DestroySet(used) after the rule went: %v", err)
	}
}

// TestKernelListKeepParity runs the same List(keep) on the kernel and the
// fake, with a keep that changes the sets as it is asked: it destroys a
// set it accepts and another it accepted before, adds a member to a set
// not yet read, creates a set (absent: keep saw the names first), and
// refuses a family. Both read the same; after a keep that panics, both
// list again.
func TestKernelListKeepParity(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel, fake := New(), NewFake()
	for _, i := range []Interface{kernel, fake} {
		for _, c := range typeContents() {
			create(t, i, c)
		}
	}
	list := func(i Interface) []Contents {
		seen := map[string]bool{}
		got, err := i.List(func(name string) bool {
			seen[name] = true
			switch name {
			case "ip4":
				mustDo(t, i.DestroySet("ip4"))
			case "net4":
				if seen["ipport4"] {
					mustDo(t, i.DestroySet("ipport4"))
				}
			case "port":
				mustDo(t, i.AddEntry("net6", Entry{Net: netip.MustParsePrefix("fd01::/64")}))
				mustDo(t, i.CreateSet(Set{Name: "late", Type: HashIP, Family: Inet}))
			}
			return !strings.HasSuffix(name, "4") || name == "ip4" || name == "ipport4"
		})
		if err != nil {
			t.Fatalf("%T List(keep): %v", i, err)
		}
		return normalise(got)
	}
	if k, f := list(kernel), list(fake); !reflect.DeepEqual(k, f) {
		t.Errorf("List(keep) on the kernel:\n%s\non the fake:\n%s", summary(k), summary(f))
	}
	for _, i := range []Interface{kernel, fake} {
		func() {
			defer func() { _ = recover() }()
			_, _ = i.List(func(string) bool { panic("keep") })
		}()
	}
	k, kerr := kernel.List(nil)
	f, ferr := fake.List(nil)
	if kerr != nil || ferr != nil || !reflect.DeepEqual(normalise(k), normalise(f)) {
		t.Errorf("List(nil) after a keep that panicked: kernel %v\n%s\nfake %v\n%s", kerr, summary(k), ferr, summary(f))
	}
}
