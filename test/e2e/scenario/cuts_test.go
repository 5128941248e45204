package scenario

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

func TestCutRequestsSortsFailuresByTheDeletionTheyMet(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{
		{pod: "web-1", writtenAt: ms(1000), removedAt: ms(1030), goneAt: ms(1300)},
		{pod: "web-2", writtenAt: ms(5000), removedAt: ms(5030), goneAt: 0}, // never deleted
	}
	reqs := []results.Request{
		{Seq: 1, Start: ms(900), Dur: ms(50), Kind: results.KindOK},
		{Seq: 2, Start: ms(990), Dur: ms(520), Kind: results.KindReset},            // in flight at the removal, cut
		{Seq: 3, Start: ms(1100), Dur: ms(400), Kind: results.KindReset},           // begun after it, cut
		{Seq: 4, Start: ms(1250), Dur: ms(45), Kind: results.KindEOF},              // ended 5 ms before the deletion was seen: within the watch's slack
		{Seq: 5, Start: ms(1310), Dur: ms(300), Kind: results.KindReset},           // begun after the deletion
		{Seq: 6, Start: ms(1100), Dur: ms(3000), Kind: results.KindConnectTimeout}, // not a cut
		{Seq: 7, Start: ms(5100), Dur: ms(100), Kind: results.KindReset},           // no deletion then
		{Seq: 8, Start: ms(1200), Dur: ms(5000), Kind: results.KindReadTimeout},    // begun after it, no answer after the deletion
		{Seq: 9, Start: ms(800), Dur: ms(5000), Kind: results.KindReadTimeout},     // in flight at the removal, no answer
	}
	c := cutRequests(reqs, dels)
	seqs := func(rs []results.Request) (out []int) {
		for _, r := range rs {
			out = append(out, r.Seq)
		}
		return out
	}
	for name, got := range map[string][]int{"inFlight": seqs(c.inFlight), "pinned": seqs(c.pinned), "other": seqs(c.other)} {
		want := map[string][]int{"inFlight": {2, 9}, "pinned": {3, 4, 8}, "other": {5, 6, 7}}[name]
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
