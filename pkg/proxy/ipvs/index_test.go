package ipvs

import (
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// TestWantedIndexKeepsClaimsInOrder: two ports wanting one virtual server
// share a chain; the first added wins until it is removed, and the key is
// wanted until the last claim goes.
func TestWantedIndexKeepsClaimsInOrder(t *testing.T) {
	ix := newWantedIndex(maphash.MakeSeed(), 0)
	key := func(port uint16) ipvs.ServiceKey {
		return ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.1"), Protocol: ipvs.TCP, Port: port}
	}
	a, b, c := &wantedService{service: ipvs.Service{ServiceKey: key(80)}}, &wantedService{service: ipvs.Service{ServiceKey: key(80)}},
		&wantedService{service: ipvs.Service{ServiceKey: key(443)}}
	for _, ws := range []*wantedService{a, b, c} {
		ix.add(ws)
	}
	if got := ix.first(key(80)); got != a {
		t.Fatalf("first claim of :80 = %p, want the first added %p", got, a)
	}
	if got, want := indexKeys(&ix), "10.96.0.1:443/TCP 10.96.0.1:80/TCP"; got != want {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	if last := ix.remove(a); last {
		t.Fatal("removing the first of two claims of :80 said :80 is wanted no more")
	}
	if got := ix.first(key(80)); got != b {
		t.Fatalf("after the first claim went, first of :80 = %p, want the second %p", got, b)
	}
	if !ix.remove(b) || !ix.remove(c) {
		t.Fatal("removing the last claim of a key did not say so")
	}
	if got := indexKeys(&ix); got != "" || len(ix.heads) != 0 {
		t.Fatalf("emptied index keeps keys %q, %d chains", got, len(ix.heads))
	}
}

func indexKeys(ix *wantedIndex) string {
	var out []string
	ix.keys(func(k ipvs.ServiceKey) bool {
		out = append(out, fmt.Sprintf("%s:%d/%s", k.Address, k.Port, k.Protocol))
		return true
	})
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestPortIndexReplacesInPlace: a Service's ports chain in the order they
// came; replacing one keeps its place, removing the head, a middle one or
// the tail keeps the rest.
func TestPortIndexReplacesInPlace(t *testing.T) {
	ix := newPortIndex(maphash.MakeSeed(), 0)
	nn := types.NamespacedName{Namespace: "ns", Name: "web"}
	name := func(port string) proxy.ServicePortName {
		return proxy.ServicePortName{NamespacedName: nn, Port: port, Protocol: v1.ProtocolTCP}
	}
	ports := func() string {
		var out []string
		ix.each(nn, func(c *contribution) { out = append(out, fmt.Sprintf("%s:%t", c.name.Port, c.clusterIP)) })
		return strings.Join(out, " ")
	}
	for _, p := range []string{"a", "b", "c", "d"} {
		if old := ix.replace(name(p), &contribution{name: name(p)}); old != nil {
			t.Fatalf("adding port %s replaced %v", p, old.name)
		}
	}
	if old := ix.replace(name("b"), &contribution{name: name("b"), clusterIP: true}); old == nil || old.name != name("b") || old.next != nil {
		t.Fatalf("replacing port b returned %+v, want the old b, unlinked", old)
	}
	for _, step := range []struct{ remove, want string }{
		{"", "a:false b:true c:false d:false"},
		{"c", "a:false b:true d:false"},
		{"a", "b:true d:false"},
		{"d", "b:true"},
		{"b", ""},
	} {
		if step.remove != "" {
			if old := ix.replace(name(step.remove), nil); old == nil || old.name != name(step.remove) {
				t.Fatalf("removing port %s returned %+v", step.remove, old)
			}
		}
		if got := ports(); got != step.want {
			t.Fatalf("after removing %q: ports %q, want %q", step.remove, got, step.want)
		}
	}
	if ix.get(name("a")) != nil || len(ix.heads) != 0 {
		t.Fatalf("emptied index still finds port a or keeps %d chains", len(ix.heads))
	}
}

// TestKeptObjectsFitTheirSizeClasses guards the sizes of the objects the
// desired state keeps per service port and endpoint (10k each and 100k at
// 10k services): one field more moves each to the next size class of the
// allocator (wantedService 128 -> 144 bytes, contribution 96 -> 112).
func TestKeptObjectsFitTheirSizeClasses(t *testing.T) {
	for _, o := range []struct {
		name      string
		size, max uintptr
	}{
		{"wantedService", unsafe.Sizeof(wantedService{}), 128},
		{"contribution", unsafe.Sizeof(contribution{}), 96},
		{"endpoint", unsafe.Sizeof(endpoint{}), 16},
	} {
		if o.size > o.max {
			t.Errorf("%s takes %d bytes, more than %d", o.name, o.size, o.max)
		}
	}
}

// TestAddrCountsNameAddressesExactly: counts per address of either family,
// an address listed while some port binds it; a mapped IPv4 address is not
// its IPv4 one.
func TestAddrCountsNameAddressesExactly(t *testing.T) {
	for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		m := newAddrCounts(0, family)
		v4, v6 := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("fd00::1")
		steps := []struct {
			addr  netip.Addr
			delta int
			moved bool
		}{{v4, 1, true}, {v4, 1, false}, {v6, 1, true}, {v4, -1, false}}
		for _, s := range steps {
			if got := m.add(s.addr, s.delta); got != s.moved {
				t.Fatalf("%s: add(%s, %d) said came or went %t, want %t", family, s.addr, s.delta, got, s.moved)
			}
		}
		var all []string
		for a := range m.all {
			all = append(all, a.String())
		}
		slices.Sort(all)
		if got, want := strings.Join(all, " "), "10.96.0.1 fd00::1"; got != want || m.len() != 2 {
			t.Fatalf("%s: bound %q (len %d), want %q", family, got, m.len(), want)
		}
		if m.has(netip.MustParseAddr("::ffff:10.96.0.1")) || m.has(netip.MustParseAddr("fd00::1%eth0")) {
			t.Fatalf("%s: a mapped or zoned address counts as bound", family)
		}
		if m.add(v4, -1); m.has(v4) {
			t.Fatalf("%s: %s still bound after its last port went", family, v4)
		}
	}
}

// TestWantedIndexTellsApartKeysOfOneHash: keys whose hashes are equal (here
// protocol names cut to the same 8 bytes by hashServiceKey) share a chain;
// each key is found, counted and removed on its own.
func TestWantedIndexTellsApartKeysOfOneHash(t *testing.T) {
	seed := maphash.MakeSeed()
	key := func(proto string) ipvs.ServiceKey {
		return ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.1"), Protocol: ipvs.Protocol(proto), Port: 80}
	}
	k1, k2 := key("PROTOCOL1"), key("PROTOCOL2")
	if hashServiceKey(seed, k1) != hashServiceKey(seed, k2) {
		t.Fatal("the two keys do not share a hash: the test no longer forces a collision")
	}
	ix := newWantedIndex(seed, 0)
	a, b, a2 := &wantedService{service: ipvs.Service{ServiceKey: k1}}, &wantedService{service: ipvs.Service{ServiceKey: k2}},
		&wantedService{service: ipvs.Service{ServiceKey: k1}}
	for _, ws := range []*wantedService{a, b, a2} {
		ix.add(ws)
	}
	if len(ix.heads) != 1 {
		t.Fatalf("%d chains, want the one both keys hash to", len(ix.heads))
	}
	if ix.first(k1) != a || ix.first(k2) != b {
		t.Fatalf("first(k1) = %p, first(k2) = %p, want %p and %p", ix.first(k1), ix.first(k2), a, b)
	}
	var each []*wantedService
	ix.each(k1, func(ws *wantedService) { each = append(each, ws) })
	if !slices.Equal(each, []*wantedService{a, a2}) {
		t.Fatalf("each(k1) = %p, want %p", each, []*wantedService{a, a2})
	}
	if got, want := indexKeys(&ix), "10.96.0.1:80/PROTOCOL1 10.96.0.1:80/PROTOCOL2"; got != want {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	if ix.remove(b) != true || ix.first(k2) != nil || ix.first(k1) != a {
		t.Fatal("removing k2's only claim did not leave k1's claims alone")
	}
	if ix.remove(a) || ix.first(k1) != a2 {
		t.Fatal("removing k1's first claim lost its second")
	}
	if !ix.remove(a2) || len(ix.heads) != 0 {
		t.Fatalf("emptied index keeps %d chains", len(ix.heads))
	}
}

// TestIndexSlotsAreTheDocumentedSizes guards the numbers docs/kep/README.md,
// docs/design.md and index.go give for the indexes: a slot (key and value)
// of either hashed index 16 bytes, where a key with its list took 72 (a
// virtual server's) and 56 (a Service's name); a bound address's 8 bytes
// for IPv4 and 20 for IPv6, where a netip.Addr and an int took 32; and a
// map sized for 30k entries has 65,536 slots (so each byte of a slot costs
// two per entry). Upstream's BaseEndpointInfo, which an endpoint replaces,
// is 64 bytes.
func TestIndexSlotsAreTheDocumentedSizes(t *testing.T) {
	slot := func(m any) uintptr {
		mt := reflect.TypeOf(m)
		return mt.Key().Size() + mt.Elem().Size()
	}
	var ac addrCounts
	for _, s := range []struct {
		name       string
		size, want uintptr
	}{
		{"wanted index slot", slot(wantedIndex{}.heads), 16},
		{"port index slot", slot(portIndex{}.heads), 16},
		{"IPv4 bound address slot", slot(ac.v4), 8},
		{"IPv6 bound address slot", slot(ac.v6), 20},
		{"virtual server key and list (before)", unsafe.Sizeof(ipvs.ServiceKey{}) + unsafe.Sizeof([]*wantedService(nil)), 72},
		{"Service name and list (before)", unsafe.Sizeof(types.NamespacedName{}) + unsafe.Sizeof([]*contribution(nil)), 56},
		{"address and count (before)", unsafe.Sizeof(netip.Addr{}) + unsafe.Sizeof(0), 32},
		{"upstream's BaseEndpointInfo", unsafe.Sizeof(proxy.BaseEndpointInfo{}), 64},
		{"contribution with a list instead of first", unsafe.Sizeof(contribution{}) - unsafe.Sizeof(&wantedService{}) + unsafe.Sizeof([]*wantedService(nil)), 112},
	} {
		if s.size != s.want {
			t.Errorf("%s: %d bytes, the docs say %d", s.name, s.size, s.want)
		}
	}
	got := uint64(math.MaxUint64)
	for range 3 { // the least of three: another goroutine may allocate meanwhile
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := make(map[uint64]*wantedService, 30000)
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		got = min(got, after.TotalAlloc-before.TotalAlloc)
	}
	// A slot takes its 16 bytes and a control byte; the tables and their
	// directory a little more.
	if slots := uint64(65536); got < slots*17 || got > slots*19 {
		t.Errorf("a map sized for 30k entries allocated %d bytes, want those of %d slots of 16 bytes (%d to %d)", got, slots, slots*17, slots*19)
	}
}
