package ipvs

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Real servers are kept per virtual server in sorted slices, not maps: a
// node holds one entry per endpoint and virtual server (100k at 10k
// services x 10 endpoints, twice: wanted and observed), and a slice of
// ten costs a third of a map of ten. Lookups are binary searches.

// destKeys is a sorted set of real servers.
type destKeys []ipvs.DestinationKey

// newDestKeys sorts keys and drops duplicates (two EndpointSlices may list
// one endpoint), in place.
func newDestKeys(keys []ipvs.DestinationKey) destKeys {
	slices.SortFunc(keys, compareDestKeys)
	return slices.Clip(slices.Compact(keys))
}

func (s destKeys) has(k ipvs.DestinationKey) bool {
	_, found := slices.BinarySearchFunc(s, k, compareDestKeys)
	return found
}

// hasAddress says whether some key has address a, on any port.
func (s destKeys) hasAddress(a netip.Addr) bool {
	i, _ := slices.BinarySearchFunc(s, ipvs.DestinationKey{Address: a}, compareDestKeys)
	return i < len(s) && s[i].Address == a
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
	return slices.DeleteFunc(l, func(d ipvs.Destination) bool { return destKeys(keys).has(d.DestinationKey) })
}

func compareDestKeys(a, b ipvs.DestinationKey) int {
	if c := a.Address.Compare(b.Address); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}
