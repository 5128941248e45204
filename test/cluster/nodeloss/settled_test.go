//go:build cluster

package nodeloss

import (
	"testing"
	"time"
)

// No cluster needed: go test -tags cluster -run TestIPVSSettled ./test/cluster/nodeloss
//
// "failed more than 1 s after node-a's IPVS changed" was counted from the latest change of
// any lost real server, deletions included: upstream's rows of 2026-12-06 (weight 0 at 62
// and 76 s, deleted at 105 and 165 s after the kill, the client stopping ~180 s after it)
// counted from 165 s and read "0 of them", whatever failed between 77 and 165 s, when no
// real server of node-b took new connections any more. The reference is when the last of
// them first left service (weight 0 or deleted), and none when one never did.
func TestIPVSSettled(t *testing.T) {
	kill := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	s := func(sec float64) time.Time { return kill.Add(time.Duration(sec * float64(time.Second))) }
	for _, c := range []struct {
		name   string
		reals  []realChange
		want   time.Time
		wantOK bool
	}{
		{"upstream: weight 0, deleted much later", []realChange{
			{zero: s(76.3), zeroed: true, del: s(105.4), deleted: true},
			{zero: s(76.3), zeroed: true},
			{zero: s(62.1), zeroed: true, del: s(165.4), deleted: true},
			{zero: s(62.1), zeroed: true},
		}, s(76.3), true},
		{"gate on: deleted at once", []realChange{
			{del: s(10.9), deleted: true}, {del: s(11.1), deleted: true},
		}, s(11.1), true},
		{"one real server unchanged", []realChange{
			{zero: s(15.9), zeroed: true}, {},
		}, time.Time{}, false},
	} {
		got, ok := ipvsSettled(c.reals)
		if ok != c.wantOK || !got.Equal(c.want) {
			t.Errorf("%s: ipvsSettled = %v, %v; want %v, %v", c.name, got.Sub(kill), ok, c.want.Sub(kill), c.wantOK)
		}
	}
}
