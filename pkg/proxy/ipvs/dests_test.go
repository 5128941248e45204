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
	want := destKeys{parseDestKey("10.0.0.1:79"), parseDestKey("10.0.0.1:80"), parseDestKey("10.0.0.2:80")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
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
