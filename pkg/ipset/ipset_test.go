package ipset

import (
	"errors"
	"net/netip"
	"reflect"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

var (
	ip4  = netip.MustParseAddr("10.0.0.1")
	ip4b = netip.MustParseAddr("10.0.0.2")
	ip6  = netip.MustParseAddr("fd00::1")
	ip6b = netip.MustParseAddr("fd00::2")
	net4 = netip.MustParsePrefix("10.0.0.0/8")
	net6 = netip.MustParsePrefix("fd00::/64")
)

func TestEntryString(t *testing.T) {
	tests := []struct {
		entry Entry
		want  string
	}{
		{Entry{IP: ip4}, "10.0.0.1"},
		{Entry{Net: net4}, "10.0.0.0/8"},
		{Entry{IP: ip4, Protocol: "tcp", Port: 80}, "10.0.0.1,tcp:80"},
		{Entry{IP: ip4, Protocol: "udp", Port: 53, IP2: ip4b}, "10.0.0.1,udp:53,10.0.0.2"},
		{Entry{IP: ip4, Protocol: "sctp", Port: 80, Net: net4}, "10.0.0.1,sctp:80,10.0.0.0/8"},
		{Entry{IP: ip6, Protocol: "tcp", Port: 80, IP2: ip6b}, "fd00::1,tcp:80,fd00::2"},
		{Entry{Port: 30080}, "30080"},
	}
	for _, tt := range tests {
		if got := tt.entry.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.entry, got, tt.want)
		}
	}
}

// typeCase is one set of each type and family with a valid entry.
type typeCase struct {
	set   Set
	entry Entry
}

func typeCases() []typeCase {
	return []typeCase{
		{Set{Name: "ip4", Type: HashIP, Family: Inet}, Entry{IP: ip4}},
		{Set{Name: "ip6", Type: HashIP, Family: Inet6}, Entry{IP: ip6}},
		{Set{Name: "ipport4", Type: HashIPPort, Family: Inet}, Entry{IP: ip4, Protocol: "tcp", Port: 80}},
		{Set{Name: "ipport6", Type: HashIPPort, Family: Inet6}, Entry{IP: ip6, Protocol: "udp", Port: 53}},
		{Set{Name: "ipportip4", Type: HashIPPortIP, Family: Inet}, Entry{IP: ip4, Protocol: "tcp", Port: 80, IP2: ip4}},
		{Set{Name: "ipportip6", Type: HashIPPortIP, Family: Inet6}, Entry{IP: ip6, Protocol: "sctp", Port: 80, IP2: ip6b}},
		{Set{Name: "ipportnet4", Type: HashIPPortNet, Family: Inet}, Entry{IP: ip4, Protocol: "tcp", Port: 80, Net: net4}},
		{Set{Name: "ipportnet6", Type: HashIPPortNet, Family: Inet6}, Entry{IP: ip6, Protocol: "tcp", Port: 80, Net: net6}},
		{Set{Name: "net4", Type: HashNet, Family: Inet}, Entry{Net: net4}},
		{Set{Name: "net6", Type: HashNet, Family: Inet6}, Entry{Net: net6}},
		{Set{Name: "port", Type: BitmapPort, PortRange: "0-65535"}, Entry{Port: 30080}},
	}
}

// invalidEntries are entries each type must refuse with EINVAL.
func invalidEntries(tc typeCase) []Entry {
	e := tc.entry
	other := ip6
	if tc.set.Family == Inet6 {
		other = ip4
	}
	var bad []Entry
	if e.IP.IsValid() {
		wrongFamily, missingIP := e, e
		wrongFamily.IP, missingIP.IP = other, netip.Addr{}
		bad = append(bad, wrongFamily, missingIP)
	}
	if e.Protocol != "" {
		noProto, badProto := e, e
		noProto.Protocol, badProto.Protocol = "", "icmp"
		bad = append(bad, noProto, badProto)
	}
	if e.Net.IsValid() {
		zero := e
		zero.Net = netip.PrefixFrom(e.Net.Addr(), 0)
		bad = append(bad, zero)
	}
	return bad
}

func TestFakeTypes(t *testing.T) {
	for _, tc := range typeCases() {
		t.Run(tc.set.Name, func(t *testing.T) {
			f := NewFake()
			wantErrno(t, f.CreateSet(tc.set), 0)
			wantErrno(t, f.CreateSet(tc.set), syscall.EEXIST)
			wantErrno(t, f.AddEntry(tc.set.Name, tc.entry), 0)
			wantErrno(t, f.AddEntry(tc.set.Name, tc.entry), syscall.EEXIST)
			for _, bad := range invalidEntries(tc) {
				wantErrno(t, f.AddEntry(tc.set.Name, bad), syscall.EINVAL)
			}
			got, _ := f.List(nil)
			want := []Contents{{Set: tc.set, Entries: []Entry{tc.entry}}}
			if tc.set.Type == BitmapPort {
				want[0].Family = ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("List() = %+v, want %+v", got, want)
			}
			wantErrno(t, f.DeleteEntry(tc.set.Name, tc.entry), 0)
			wantErrno(t, f.DeleteEntry(tc.set.Name, tc.entry), syscall.ENOENT)
			wantErrno(t, f.DestroySet(tc.set.Name), 0)
			wantErrno(t, f.DestroySet(tc.set.Name), syscall.ENOENT)
			wantErrno(t, f.AddEntry(tc.set.Name, tc.entry), syscall.ENOENT)
			wantErrno(t, f.DeleteEntry(tc.set.Name, tc.entry), syscall.ENOENT)
		})
	}
}

func TestFakeInvalidSets(t *testing.T) {
	tests := []Set{
		{Name: "", Type: HashIP, Family: Inet},
		{Name: "a-name-longer-than-thirty-one-chars", Type: HashIP, Family: Inet},
		{Name: "x", Type: "hash:mac", Family: Inet},
		{Name: "x", Type: HashIP, Family: "inet7"},
		{Name: "x", Type: HashIP, Family: Inet, PortRange: "1-2"},
		{Name: "x", Type: BitmapPort},
		{Name: "x", Type: BitmapPort, PortRange: "1-70000"},
	}
	for _, s := range tests {
		f := NewFake()
		wantErrno(t, f.CreateSet(s), syscall.EINVAL)
		if f.Dump() != "" {
			t.Errorf("CreateSet(%+v) changed the state: %q", s, f.Dump())
		}
	}
}

func TestFakeNormalises(t *testing.T) {
	f := NewFake()
	mustDo(t, f.CreateSet(Set{Name: "ports", Type: BitmapPort, Family: Inet, PortRange: "100-20", Comment: "c"}))
	mustDo(t, f.CreateSet(Set{Name: "nets", Type: HashNet, Family: Inet}))
	mustDo(t, f.CreateSet(Set{Name: "ipport", Type: HashIPPortNet, Family: Inet}))
	mustDo(t, f.AddEntry("nets", Entry{Net: netip.MustParsePrefix("10.1.2.3/16")}))
	mustDo(t, f.AddEntry("ipport", Entry{IP: netip.MustParseAddr("::ffff:10.0.0.1"), Protocol: "udp", Port: 53, Net: netip.MustParsePrefix("10.9.9.9/24")}))
	mustDo(t, f.AddEntry("ports", Entry{Port: 50}))
	wantErrno(t, f.AddEntry("ports", Entry{Port: 10}), syscall.EINVAL)
	wantErrno(t, f.AddEntry("nets", Entry{Net: netip.MustParsePrefix("10.1.0.0/16")}), syscall.EEXIST)
	mustDo(t, f.DeleteEntry("nets", Entry{Net: netip.MustParsePrefix("10.1.0.0/16")}))
	want := "set ipport hash:ip,port,net inet\n" +
		"  10.0.0.1,udp:53,10.9.9.0/24\n" +
		"set nets hash:net inet\n" +
		"set ports bitmap:port range 20-100\n" +
		"  50\n"
	if got := f.Dump(); got != want {
		t.Errorf("Dump() =\n%s\nwant\n%s", got, want)
	}
}

func TestFakeInjectAndCalls(t *testing.T) {
	f := NewFake()
	mustDo(t, f.CreateSet(Set{Name: "s", Type: HashIP, Family: Inet}))
	injected := errors.New("injected")
	var seen []string
	f.Inject = func(op, object string) error {
		seen = append(seen, op+" "+object)
		return injected
	}
	if err := f.AddEntry("s", Entry{IP: ip4}); !errors.Is(err, injected) {
		t.Errorf("AddEntry with Inject = %v, want injected", err)
	}
	if err := f.DestroySet("s"); !errors.Is(err, injected) {
		t.Errorf("DestroySet with Inject = %v, want injected", err)
	}
	if _, err := f.List(nil); err != nil {
		t.Errorf("List with Inject = %v, want nil (not a mutation)", err)
	}
	if want := "set s hash:ip inet\n"; f.Dump() != want {
		t.Errorf("Dump() = %q, want %q", f.Dump(), want)
	}
	wantSeen := []string{"AddEntry s 10.0.0.1", "DestroySet s"}
	if !reflect.DeepEqual(seen, wantSeen) {
		t.Errorf("Inject saw %q, want %q", seen, wantSeen)
	}
	wantCalls := map[string]int{"CreateSet": 1, "AddEntry": 1, "DestroySet": 1, "List": 1}
	if !reflect.DeepEqual(f.Calls, wantCalls) {
		t.Errorf("Calls = %v, want %v", f.Calls, wantCalls)
	}
}

// TestKernelEncoding checks that each valid entry survives the encoding
// for netlink and the decoding of a dump.
func TestKernelEncoding(t *testing.T) {
	for _, tc := range typeCases() {
		k, err := entryToKernel(tc.entry)
		if err != nil {
			t.Fatalf("entryToKernel(%v): %v", tc.entry, err)
		}
		if got := entryFromKernel(tc.set.Type, *k); got != tc.entry {
			t.Errorf("%s: round trip of %v gave %v", tc.set.Type, tc.entry, got)
		}
	}
}

func TestMergeResults(t *testing.T) {
	port := uint16(80)
	proto := uint8(6)
	kernelEntry := netlink.IPSetEntry{IP: ip4.AsSlice(), Port: &port, Protocol: &proto}
	results := []netlink.IPSetResult{
		{SetName: "a", TypeName: "hash:ip,port", Family: 2, Entries: []netlink.IPSetEntry{kernelEntry}},
		{SetName: "p", TypeName: "bitmap:port", PortFrom: 1, PortTo: 9},
		{SetName: "a", TypeName: "hash:ip,port", Entries: []netlink.IPSetEntry{kernelEntry}},
	}
	entry := Entry{IP: ip4, Protocol: "tcp", Port: 80}
	want := []Contents{
		{Set: Set{Name: "a", Type: HashIPPort, Family: Inet}, Entries: []Entry{entry, entry}},
		{Set: Set{Name: "p", Type: BitmapPort, PortRange: "1-9"}},
	}
	if got := mergeResults(results); !reflect.DeepEqual(got, want) {
		t.Errorf("mergeResults() = %+v, want %+v", got, want)
	}
}

func wantErrno(t *testing.T, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 && err != nil || want != 0 && !errors.Is(err, want) {
		t.Errorf("got error %v, want errno %v", err, want)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
