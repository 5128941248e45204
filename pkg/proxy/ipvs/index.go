package ipvs

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// The desired state's two per-port indexes are maps keyed by a 64-bit hash
// of the key, not by the key, with what shares a hash chained in the order
// it was added. A map of 30k entries has 64k slots (Go's maps stay under
// 7/8 full in tables of 1,024 slots, so 30k needs 64 tables): every byte of
// a slot costs two per entry. A hash and a pointer take 16 bytes; a
// virtual server's key with its list took 72 (the address carries a zone
// pointer, the protocol is a string), a Service's name with its list 56,
// plus a one-element list on the heap each. The chains are the lists: two
// ports wanting one virtual server, a Service's ports, and, rarely, two
// keys of one hash, told apart by comparing the whole key.

// hashChains maps a hash to the first of its chain of T.
type hashChains[T any] struct {
	seed  maphash.Seed
	heads map[uint64]*T
}

func newHashChains[T any](seed maphash.Seed, size int) hashChains[T] {
	return hashChains[T]{seed: seed, heads: make(map[uint64]*T, size)}
}

// wantedIndex finds the wanted virtual servers by key; they chain through
// wantedService.next.
type wantedIndex struct{ hashChains[wantedService] }

func newWantedIndex(seed maphash.Seed, size int) wantedIndex {
	return wantedIndex{newHashChains[wantedService](seed, size)}
}

// hashCleared are bits of the indexes' hashes cleared (none but in
// tests, which clear bits to force keys to share chains: collisions are
// rare with 64 bits, and their handling is what the chains' key
// comparisons are for). Atomic: a test's proxier may sync on the runner's
// goroutine while another test sets it.
var hashCleared atomic.Uint64

// hashServiceKey hashes a virtual server's key from a buffer on the stack
// (maphash.Comparable would copy the key to the heap); a protocol name
// longer than the buffer's room is cut, which only makes keys share a hash.
func hashServiceKey(seed maphash.Seed, k ipvs.ServiceKey) uint64 {
	var b [16 + 2 + 8]byte
	a := k.Address.As16()
	copy(b[:16], a[:])
	binary.BigEndian.PutUint16(b[16:], k.Port)
	copy(b[18:], k.Protocol)
	return maphash.Bytes(seed, b[:]) &^ hashCleared.Load()
}

// first is the virtual server wanted at key (the first port that wants it
// wins), or nil.
func (ix *wantedIndex) first(key ipvs.ServiceKey) *wantedService {
	for ws := ix.heads[hashServiceKey(ix.seed, key)]; ws != nil; ws = ws.next {
		if ws.service.ServiceKey == key {
			return ws
		}
	}
	return nil
}

// each calls f with every virtual server wanted at key, first to last.
func (ix *wantedIndex) each(key ipvs.ServiceKey, f func(*wantedService)) {
	for ws := ix.heads[hashServiceKey(ix.seed, key)]; ws != nil; ws = ws.next {
		if ws.service.ServiceKey == key {
			f(ws)
		}
	}
}

// add appends ws to its chain.
func (ix *wantedIndex) add(ws *wantedService) {
	h := hashServiceKey(ix.seed, ws.service.ServiceKey)
	head := ix.heads[h]
	if head == nil {
		ix.heads[h] = ws
		return
	}
	last := head
	for last.next != nil {
		last = last.next
	}
	last.next = ws
}

// remove unlinks ws and says whether its key is wanted no more.
func (ix *wantedIndex) remove(ws *wantedService) (last bool) {
	key := ws.service.ServiceKey
	h := hashServiceKey(ix.seed, key)
	var prev *wantedService
	for x := ix.heads[h]; x != nil; prev, x = x, x.next {
		if x != ws {
			continue
		}
		switch {
		case prev != nil:
			prev.next = x.next
		case x.next != nil:
			ix.heads[h] = x.next
		default:
			delete(ix.heads, h)
		}
		ws.next = nil
		break
	}
	return ix.first(key) == nil
}

// keys yields each wanted key once, until yield returns false.
func (ix *wantedIndex) keys(yield func(ipvs.ServiceKey) bool) {
	for _, head := range ix.heads {
		for ws := head; ws != nil; ws = ws.next {
			if firstOfKey(head, ws) && !yield(ws.service.ServiceKey) {
				return
			}
		}
	}
}

// firstOfKey says whether ws is the first of its key in the chain from head.
func firstOfKey(head, ws *wantedService) bool {
	for x := head; x != ws; x = x.next {
		if x.service.ServiceKey == ws.service.ServiceKey {
			return false
		}
	}
	return true
}

// portIndex finds the contributions of a Service's ports; they chain
// through contribution.next.
type portIndex struct{ hashChains[contribution] }

func newPortIndex(seed maphash.Seed, size int) portIndex {
	return portIndex{newHashChains[contribution](seed, size)}
}

func hashServiceName(seed maphash.Seed, nn types.NamespacedName) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(nn.Namespace)
	h.WriteByte('/')
	h.WriteString(nn.Name)
	return h.Sum64() &^ hashCleared.Load()
}

// get is a service port's contribution, or nil (a Service has few ports).
func (ix *portIndex) get(name proxy.ServicePortName) *contribution {
	var found *contribution
	ix.each(name.NamespacedName, func(c *contribution) {
		if c.name == name {
			found = c
		}
	})
	return found
}

// each calls f with the contributions of a Service's ports.
func (ix *portIndex) each(nn types.NamespacedName, f func(*contribution)) {
	for c := ix.heads[hashServiceName(ix.seed, nn)]; c != nil; c = c.next {
		if c.name.NamespacedName == nn {
			f(c)
		}
	}
}

// replace puts c (nil: nothing) where the contribution named name is
// (appended when there is none) and returns the one it replaced, or nil.
func (ix *portIndex) replace(name proxy.ServicePortName, c *contribution) *contribution {
	h := hashServiceName(ix.seed, name.NamespacedName)
	var prev *contribution
	x := ix.heads[h]
	for x != nil && x.name != name {
		prev, x = x, x.next
	}
	var rest *contribution
	if x != nil {
		rest, x.next = x.next, nil
	}
	if c != nil {
		c.next, rest = rest, c
	}
	switch {
	case prev != nil:
		prev.next = rest
	case rest != nil:
		ix.heads[h] = rest
	default:
		delete(ix.heads, h)
	}
	return x
}

// addrCounts counts the ports that bind each address. It is keyed by the
// address's bits, not a netip.Addr (24 bytes with its zone's pointer),
// with 32-bit counts: an IPv4 address's slot takes 8 bytes instead of 32,
// an IPv6 one's 20, and every cluster IP has one. The desired state's
// addresses are unmapped and have no zone (addrFromIP makes them so), so
// the bits name one exactly.
type addrCounts struct {
	v4 map[uint32]int32
	v6 map[[16]byte]int32
}

// newAddrCounts sizes the map of the proxier's family for size addresses.
func newAddrCounts(size int, family v1.IPFamily) addrCounts {
	if family == v1.IPv6Protocol {
		return addrCounts{v4: map[uint32]int32{}, v6: make(map[[16]byte]int32, size)}
	}
	return addrCounts{v4: make(map[uint32]int32, size), v6: map[[16]byte]int32{}}
}

func v4Key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// has says whether some port binds a.
func (m addrCounts) has(a netip.Addr) bool {
	switch {
	case a.Is4():
		return m.v4[v4Key(a)] > 0
	case a.Is6() && a.Zone() == "":
		return m.v6[a.As16()] > 0
	}
	return false
}

// add adjusts a's count and says whether a came or went.
func (m addrCounts) add(a netip.Addr, delta int) bool {
	if a.Is4() {
		return count(m.v4, v4Key(a), int32(delta))
	}
	return count(m.v6, a.As16(), int32(delta))
}

// len is the number of bound addresses.
func (m addrCounts) len() int { return len(m.v4) + len(m.v6) }

// all yields the bound addresses until yield returns false.
func (m addrCounts) all(yield func(netip.Addr) bool) {
	for k := range m.v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], k)
		if !yield(netip.AddrFrom4(b)) {
			return
		}
	}
	for k := range m.v6 {
		if !yield(netip.AddrFrom16(k)) {
			return
		}
	}
}
