package nftrules

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The fixtures are nft 1.0.6's own output (testdata/table.nft says how
// they were made).
func parseFile(t *testing.T, name string) *Ruleset {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return rs
}

func eps(s ...string) []netip.AddrPort {
	out := make([]netip.AddrPort, len(s))
	for i, x := range s {
		out[i] = netip.MustParseAddrPort(x)
	}
	return out
}

func svc(addr string) ServiceKey {
	return ServiceKey{Addr: netip.MustParseAddr(addr), Protocol: "tcp", Port: 80}
}

func TestServiceEndpointsOfEachShape(t *testing.T) {
	rs := parseFile(t, "table.json")
	for _, tc := range []struct {
		name string
		key  ServiceKey
		want []netip.AddrPort
	}{
		{"numgen map of 3", svc("10.96.1.0"), eps("10.128.0.0:8080", "10.128.0.1:8080", "10.128.0.2:8080")},
		{"single dnat", svc("10.96.1.1"), eps("10.128.0.16:8080")},
		{"affinity: vmap to endpoint chains", svc("10.96.1.2"), eps("10.128.0.32:8080", "10.128.0.33:8080")},
		{"not in service-ips", svc("10.96.1.3"), nil},
	} {
		if got := rs.ServiceEndpoints(tc.key); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ServiceEndpoints(%v) = %v, want %v", tc.name, tc.key, got, tc.want)
		}
	}
	if n := len(rs.Services()); n != 3 {
		t.Errorf("%d services in service-ips, want 3", n)
	}
	if c, _ := rs.Chain(svc("10.96.1.0")); c != "service-ABCDEFGH-bench/svc-00000/tcp/http" {
		t.Errorf("Chain(10.96.1.0) = %q", c)
	}
}

// The masquerade jump goes to a fixed chain (no "/"), which is not followed.
func TestMasqueradeJumpNotAnEndpoint(t *testing.T) {
	rs := parseFile(t, "table.json")
	if got := rs.Endpoints("mark-for-masquerade"); len(got) != 0 {
		t.Errorf("mark-for-masquerade has endpoints %v", got)
	}
}

func TestEndpointGoneFromChainListing(t *testing.T) {
	chain := "service-ABCDEFGH-bench/svc-00000/tcp/http"
	gone := netip.MustParseAddrPort("10.128.0.0:8080")
	before := parseFile(t, "chain.json").Endpoints(chain)
	after := parseFile(t, "chain-removed.json").Endpoints(chain)
	if !slices.Contains(before, gone) {
		t.Errorf("before the update %v lacks %v", before, gone)
	}
	if slices.Contains(after, gone) {
		t.Errorf("after the update %v still holds %v", after, gone)
	}
	if want := eps("10.128.0.1:8080", "10.128.0.2:8080"); !slices.Equal(after, want) {
		t.Errorf("after the update %v, want %v", after, want)
	}
}

func TestParseErrorsNameTheObject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`not json`, "decode nft JSON"},
		{`{"nftables":[{"rule":{"chain":"service-x/y","expr":[{"dnat":{"addr":"nowhere","port":1}}]}}]}`, "rule in chain service-x/y"},
		{`{"nftables":[{"map":{"name":"service-ips","elem":[[{"concat":["10.96.1.0","tcp"]},{"goto":{"target":"c"}}]]}}]}`, "map service-ips"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error naming %q", tc.in, err, tc.want)
		}
	}
}

// An element with a comment wraps its key in {"elem": {"val": ...}}.
func TestServiceKeyWithComment(t *testing.T) {
	rs, err := Parse([]byte(`{"nftables":[{"map":{"name":"service-ips","elem":[[` +
		`{"elem":{"val":{"concat":["10.96.1.9","tcp",80]},"comment":"c"}},{"goto":{"target":"service-a/b"}}]]}},` +
		`{"rule":{"chain":"service-a/b","expr":[{"dnat":{"addr":"10.128.0.9","port":8080}}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.ServiceEndpoints(svc("10.96.1.9")); !slices.Equal(got, eps("10.128.0.9:8080")) {
		t.Errorf("ServiceEndpoints = %v", got)
	}
}

// The expressions nft 1.0.6 writes for upstream's two DNAT shapes, as
// `nft --debug=netlink` printed them: "numgen reg 1 = random mod 2",
// "lookup reg 1 set __map%d dreg 1", "nat dnat ip addr_min reg 1 proto_min
// reg 9" with elements "00000000 : 0100800a 0000901f" (little-endian words:
// 10.128.0.1, port 8080 big-endian and padded); for one endpoint
// "immediate reg 1 0x1000800a", "immediate reg 2 0x0000901f", "nat dnat ip
// addr_min reg 1 proto_min reg 2" (128-bit register names).
func TestDNATTargetsFromNetlinkExpressions(t *testing.T) {
	mapRule := &gnft.Rule{Exprs: []expr.Any{
		&expr.Numgen{Register: 1, Modulus: 2, Type: 1},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "__map0"},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 9},
	}}
	oneRule := &gnft.Rule{Exprs: []expr.Any{
		&expr.Immediate{Register: 1, Data: []byte{10, 128, 0, 16}},
		&expr.Immediate{Register: 2, Data: []byte{0x1f, 0x90, 0, 0}},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 2},
	}}
	masqRule := &gnft.Rule{Exprs: []expr.Any{&expr.Immediate{Register: 0, Data: []byte{0, 0, 0, 1}}}}
	elements := func(set string) ([]gnft.SetElement, error) {
		if set != "__map0" {
			t.Fatalf("looked up set %q", set)
		}
		// key: numgen's index; value: address . port, each field 4-byte aligned
		return []gnft.SetElement{
			{Key: []byte{0, 0, 0, 0}, Val: []byte{10, 128, 0, 1, 0x1f, 0x90, 0, 0}},
			{Key: []byte{1, 0, 0, 0}, Val: []byte{10, 128, 0, 2, 0x1f, 0x90, 0, 0}},
		}, nil
	}
	got, err := dnatTargetsOf([]*gnft.Rule{masqRule, mapRule, oneRule}, elements)
	if err != nil {
		t.Fatal(err)
	}
	if want := eps("10.128.0.1:8080", "10.128.0.2:8080", "10.128.0.16:8080"); !slices.Equal(got, want) {
		t.Errorf("dnatTargetsOf = %v, want %v", got, want)
	}
}

// A map deleted between the rule dump and the element dump (upstream
// replaced the chain's anonymous map in a sync) is read again; any other
// error, or a map gone at every attempt, is returned.
func TestRereadIfVanished(t *testing.T) {
	vanished := fmt.Errorf("read elements of set __map462: %w", &os.SyscallError{Syscall: "recvmsg", Err: unix.ENOENT})
	reads := func(errs ...error) (func() (int, error), *int) {
		n := 0
		return func() (int, error) {
			n++
			if n <= len(errs) {
				return 0, errs[n-1]
			}
			return n, nil
		}, &n
	}

	// As google/nftables' element dump returns it: the errno formatted, not wrapped.
	formatted := fmt.Errorf("read elements of set __map17: %w", fmt.Errorf("receiveAckAware: %v", vanished))
	read, n := reads(vanished, formatted)
	if v, err := rereadIfVanished(5, read); err != nil || v != 3 || *n != 3 {
		t.Errorf("two vanished maps then a good read: got %d, %v after %d reads; want 3, nil after 3", v, err, *n)
	}
	other := errors.New("read rules of nftables chain x: permission denied")
	read, n = reads(other)
	if _, err := rereadIfVanished(5, read); !errors.Is(err, other) || *n != 1 {
		t.Errorf("another error: got %v after %d reads; want it at once", err, *n)
	}
	read, n = reads(vanished, vanished, vanished)
	_, err := rereadIfVanished(3, read)
	if !errors.Is(err, unix.ENOENT) || *n != 3 || !strings.Contains(err.Error(), "__map462") || !strings.Contains(err.Error(), "3 reads") {
		t.Errorf("gone at every attempt: got %v after %d reads; want ENOENT naming the map and 3 reads", err, *n)
	}
}
