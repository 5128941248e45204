package ipvs

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Real servers are kept per virtual server in sorted slices, not maps: a
// node holds one entry per endpoint and virtual server (100k at 10k
// services x 10 endpoints, twice: wanted and observed), and a slice of
// ten costs a third of a map of ten. Lookups are binary searches.

// destKeys is a sorted set of real servers, packed: after a byte giving
// the record size, a record of 6 bytes (IPv4 address, port) or 18 (IPv6
// address, an IPv4 one mapped when the set mixes families) per real
// server. The desired state holds one per wanted virtual server (100k real
// servers at 10k services x 10 endpoints): as []ipvs.DestinationKey (32
// bytes each: netip.Addr carries a zone pointer) ten took 320 bytes,
// packed they take 64. It is never changed, only replaced.
type destKeys []byte

// newDestKeys packs keys, sorted, without duplicates (two EndpointSlices
// may list one endpoint); it sorts keys in place.
func newDestKeys(keys []ipvs.DestinationKey) destKeys {
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, compareDestKeys)
	keys = slices.Compact(keys)
	size := 6
	for _, k := range keys {
		if !k.Address.Is4() {
			size = 18
			break
		}
	}
	out := make(destKeys, 1, 1+size*len(keys))
	out[0] = byte(size)
	for _, k := range keys {
		if size == 6 {
			a := k.Address.As4()
			out = append(out, a[:]...)
		} else {
			a := k.Address.As16()
			out = append(out, a[:]...)
		}
		out = binary.BigEndian.AppendUint16(out, k.Port)
	}
	return out
}

// len is the number of real servers.
func (s destKeys) len() int {
	if len(s) == 0 {
		return 0
	}
	return (len(s) - 1) / int(s[0])
}

// at is the i-th real server.
func (s destKeys) at(i int) ipvs.DestinationKey {
	size := int(s[0])
	r := s[1+i*size : 1+(i+1)*size]
	var a netip.Addr
	if size == 6 {
		a = netip.AddrFrom4([4]byte(r[:4]))
	} else {
		a = netip.AddrFrom16([16]byte(r[:16])).Unmap()
	}
	return ipvs.DestinationKey{Address: a, Port: binary.BigEndian.Uint16(r[size-2:])}
}

// search is where k is or would be, and whether it is there.
func (s destKeys) search(k ipvs.DestinationKey) (int, bool) {
	lo, hi := 0, s.len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if compareDestKeys(s.at(mid), k) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < s.len() && s.at(lo) == k
}

func (s destKeys) has(k ipvs.DestinationKey) bool {
	_, found := s.search(k)
	return found
}

// hasAddress says whether some key has address a, on any port.
func (s destKeys) hasAddress(a netip.Addr) bool {
	i, _ := s.search(ipvs.DestinationKey{Address: a})
	return i < s.len() && s.at(i).Address == a
}

// destList is the real servers of one virtual server as the kernel holds
// them, sorted by key.
type destList []ipvs.Destination

// newDestList sorts dests (the caller's to give away) by key.
func newDestList(dests []ipvs.Destination) destList {
	dests = slices.Clip(dests) // growing it must not write into a shared array
	slices.SortFunc(dests, func(a, b ipvs.Destination) int { return compareDestKeys(a.DestinationKey, b.DestinationKey) })
	return dests
}

func (l destList) find(k ipvs.DestinationKey) (int, bool) {
	return slices.BinarySearchFunc(l, k, func(d ipvs.Destination, k ipvs.DestinationKey) int {
		return compareDestKeys(d.DestinationKey, k)
	})
}

func (l destList) has(k ipvs.DestinationKey) bool {
	_, found := l.find(k)
	return found
}

// upsert adds or replaces the real servers ds (sorted by key), merging from
// the back in place: O(len(l)+len(ds)) whatever their positions, so a sync
// replacing every endpoint of a large service stays linear.
func (l destList) upsert(ds []ipvs.Destination) destList {
	added := 0
	for _, d := range ds {
		if !l.has(d.DestinationKey) {
			added++
		}
	}
	n := len(l)
	if cap(l) < n+added {
		// Exactly: slices.Grow would double a short list (a kernel read
		// has no room to spare), for one or two real servers more.
		grown := make(destList, n, n+added)
		copy(grown, l)
		l = grown
	}
	l = l[:n+added]
	i, j := n-1, len(ds)-1
	for k := n + added - 1; j >= 0; k-- {
		c := -1
		if i >= 0 {
			c = compareDestKeys(l[i].DestinationKey, ds[j].DestinationKey)
		}
		switch {
		case c > 0:
			l[k] = l[i]
			i--
		case c == 0:
			l[k] = ds[j]
			i, j = i-1, j-1
		default:
			l[k] = ds[j]
			j--
		}
	}
	return l
}

// remove drops the real servers keys (sorted).
func (l destList) remove(keys []ipvs.DestinationKey) destList {
	return slices.DeleteFunc(l, func(d ipvs.Destination) bool {
		_, found := slices.BinarySearchFunc(keys, d.DestinationKey, compareDestKeys)
		return found
	})
}

func compareDestKeys(a, b ipvs.DestinationKey) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}
