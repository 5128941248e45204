package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// parseDestKey parses "10.0.0.1:80".
func parseDestKey(s string) ipvs.DestinationKey {
	ap := netip.MustParseAddrPort(s)
	return ipvs.DestinationKey{Address: ap.Addr(), Port: ap.Port()}
}

// parseDests parses "10.0.0.1:80/1 10.0.0.2:80/0" (key/weight).
func parseDests(s string) []ipvs.Destination {
	var out []ipvs.Destination
	for _, f := range strings.Fields(s) {
		key, weight, _ := strings.Cut(f, "/")
		d := ipvs.Destination{DestinationKey: parseDestKey(key), Weight: 1}
		if weight == "0" {
			d.Weight = 0
		}
		out = append(out, d)
	}
	return out
}

func formatDests(l destList) string {
	var parts []string
	for _, d := range l {
		parts = append(parts, fmt.Sprintf("%s/%d", d.DestinationKey, d.Weight))
	}
	return strings.Join(parts, " ")
}

func TestDestListUpsertRemove(t *testing.T) {
	tests := []struct {
		name, have, upsert, remove, want string
	}{
		{name: "into empty", upsert: "10.0.0.1:80/1 10.0.0.2:80/1", want: "10.0.0.1:80/1 10.0.0.2:80/1"},
		{name: "before, between, after", have: "10.0.0.2:80/1 10.0.0.4:80/1", upsert: "10.0.0.1:80/1 10.0.0.3:80/1 10.0.0.5:80/1",
			want: "10.0.0.1:80/1 10.0.0.2:80/1 10.0.0.3:80/1 10.0.0.4:80/1 10.0.0.5:80/1"},
		{name: "replace weight", have: "10.0.0.1:80/1 10.0.0.2:80/1", upsert: "10.0.0.2:80/0", want: "10.0.0.1:80/1 10.0.0.2:80/0"},
		{name: "replace and add", have: "10.0.0.1:80/1 10.0.0.3:80/1", upsert: "10.0.0.1:80/0 10.0.0.1:81/1 10.0.0.3:80/0",
			want: "10.0.0.1:80/0 10.0.0.1:81/1 10.0.0.3:80/0"},
		{name: "remove some", have: "10.0.0.1:80/1 10.0.0.2:80/1 10.0.0.3:80/1", remove: "10.0.0.1:80/1 10.0.0.3:80/1",
			want: "10.0.0.2:80/1"},
		{name: "remove missing", have: "10.0.0.1:80/1", remove: "10.0.0.9:80/1", want: "10.0.0.1:80/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newDestList(parseDests(tt.have)).upsert(parseDests(tt.upsert))
			var keys []ipvs.DestinationKey
			for _, d := range parseDests(tt.remove) {
				keys = append(keys, d.DestinationKey)
			}
			l = l.remove(keys)
			if got := formatDests(l); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewDestKeysSortsAndDedupes(t *testing.T) {
	got := newDestKeys([]ipvs.DestinationKey{parseDestKey("10.0.0.2:80"), parseDestKey("10.0.0.1:80"), parseDestKey("10.0.0.2:80"), parseDestKey("10.0.0.1:79")})
	want := []ipvs.DestinationKey{parseDestKey("10.0.0.1:79"), parseDestKey("10.0.0.1:80"), parseDestKey("10.0.0.2:80")}
	var unpacked []ipvs.DestinationKey
	for i := range got.len() {
		unpacked = append(unpacked, got.at(i))
	}
	if !slices.Equal(unpacked, want) {
		t.Errorf("got %v, want %v", unpacked, want)
	}
	if !got.has(parseDestKey("10.0.0.1:80")) || got.has(parseDestKey("10.0.0.3:80")) {
		t.Errorf("has: wrong membership in %v", got)
	}
}

// A slice read from the kernel may share its array with its neighbour's:
// growing one must not overwrite the other.
func TestNewDestListDoesNotWriteIntoSharedArray(t *testing.T) {
	all := parseDests("10.0.0.1:80/1 10.0.0.3:80/1 10.0.0.9:80/1")
	first := newDestList(all[:2]).upsert(parseDests("10.0.0.2:80/1"))
	if got := formatDests(destList(all[2:])); got != "10.0.0.9:80/1" {
		t.Errorf("neighbour changed to %q", got)
	}
	if got := formatDests(first); got != "10.0.0.1:80/1 10.0.0.2:80/1 10.0.0.3:80/1" {
		t.Errorf("got %q", got)
	}
}

// Packed keys give back what was packed, for IPv4, IPv6 and a mix, and
// take 6 bytes per IPv4 real server.
func TestDestKeysPackedRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
		size int
	}{
		{"IPv4", []string{"10.0.0.1:80", "10.0.0.1:8080", "10.244.3.9:443"}, 1 + 3*6},
		{"IPv6", []string{"[fd00::1]:80", "[fd00::1]:81", "[fd00::2]:80"}, 1 + 3*18},
		{"mixed", []string{"10.0.0.1:80", "[fd00::1]:80"}, 1 + 2*18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []ipvs.DestinationKey
			for _, k := range slices.Backward(tc.keys) {
				in = append(in, parseDestKey(k))
			}
			got := newDestKeys(slices.Clone(in))
			if len(got) != tc.size {
				t.Errorf("packed %d bytes, want %d", len(got), tc.size)
			}
			for i, k := range tc.keys {
				if got.at(i) != parseDestKey(k) || !got.has(parseDestKey(k)) || !got.hasAddress(parseDestKey(k).Address) {
					t.Errorf("record %d is %v (has %v), want %s", i, got.at(i), got.has(parseDestKey(k)), k)
				}
			}
			if got.has(parseDestKey("10.9.9.9:80")) || got.hasAddress(netip.MustParseAddr("fd00::9")) {
				t.Error("has a key never packed")
			}
		})
	}
	if newDestKeys(nil).len() != 0 || newDestKeys(nil).has(parseDestKey("10.0.0.1:80")) {
		t.Error("an empty set has members")
	}
}
