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
			klist, kerr := kernel.List()
			flist, _ := fake.List()
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
// several entries and reads them all back in one List.
func TestKernelListRoundTrip(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	var want []Contents
	for _, tc := range typeCases() {
		if err := kernel.CreateSet(tc.set); err != nil {
			t.Fatal(err)
		}
		entries := []Entry{tc.entry, variant(tc.entry)}
		for _, e := range entries {
			if err := kernel.AddEntry(tc.set.Name, e); err != nil {
				t.Fatal(err)
			}
		}
		s, _ := validateSet(tc.set)
		want = append(want, Contents{Set: s, Entries: entries})
	}
	got, err := kernel.List()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalise(got), normalise(want)) {
		t.Errorf("List() =\n%+v\nwant\n%+v", got, want)
	}
	if out, err := exec.Command("ipset", "list").CombinedOutput(); err == nil {
		t.Logf("ipset list:\n%s", out)
	}
}

// variant returns a second entry of the same shape.
func variant(e Entry) Entry {
	if e.IP.IsValid() {
		e.IP = e.IP.Next()
	}
	if e.Net.IsValid() {
		e.Net = netip.PrefixFrom(e.Net.Addr(), e.Net.Bits()+8).Masked()
	}
	if e.Port != 0 {
		e.Port++
	}
	return e
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

// TestKernelListLargeSet reads a set the kernel dumps in several messages.
func TestKernelListLargeSet(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	sets := []Set{
		{Name: "big", Type: HashIPPort, Family: Inet},
		{Name: "small", Type: HashIP, Family: Inet},
	}
	for _, s := range sets {
		if err := kernel.CreateSet(s); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3000
	ip := netip.MustParseAddr("10.0.0.0")
	for i := 0; i < n; i++ {
		ip = ip.Next()
		if err := kernel.AddEntry("big", Entry{IP: ip, Protocol: "tcp", Port: 80}); err != nil {
			t.Fatal(err)
		}
	}
	if err := kernel.AddEntry("small", Entry{IP: ip}); err != nil {
		t.Fatal(err)
	}
	got, err := kernel.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Set != sets[0] || len(got[0].Entries) != n || got[1].Set != sets[1] || len(got[1].Entries) != 1 {
		t.Errorf("List() gave %d sets; want big with %d entries and small with 1", len(got), n)
		for _, c := range got {
			t.Logf("%+v: %d entries", c.Set, len(c.Entries))
		}
	}
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
