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
		{Seq: 1, Start: ms(900), Dur: ms(50), Port: 40001, Pod: "web-1", Kind: results.KindOK}, // ports 40001, 40003, 40008: last answered by web-1
		{Seq: 2, Start: ms(990), Dur: ms(520), Kind: results.KindReset},                        // in flight at the removal, cut
		{Seq: 3, Start: ms(1100), Dur: ms(400), Port: 40001, Kind: results.KindReset},          // begun after it, cut
		{Seq: 4, Start: ms(1250), Dur: ms(45), Port: 40003, Kind: results.KindEOF},             // ended 5 ms before the deletion was seen: within the watch's slack
		{Seq: 5, Start: ms(1310), Dur: ms(300), Kind: results.KindReset},                       // begun after the deletion
		{Seq: 6, Start: ms(1100), Dur: ms(3000), Kind: results.KindConnectTimeout},             // not a cut
		{Seq: 7, Start: ms(5100), Dur: ms(100), Kind: results.KindReset},                       // no deletion then
		{Seq: 8, Start: ms(1200), Dur: ms(5000), Port: 40008, Kind: results.KindReadTimeout},   // begun after it, no answer after the deletion
		{Seq: 9, Start: ms(800), Dur: ms(5000), Kind: results.KindReadTimeout},                 // in flight at the removal, no answer
		{Seq: 10, Start: ms(600), Dur: ms(10), Port: 40003, Pod: "web-1", Kind: results.KindOK},
		{Seq: 11, Start: ms(610), Dur: ms(10), Port: 40008, Pod: "web-1", Kind: results.KindOK},
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

// classOf runs cutRequests and says which class request seq landed in.
func classOf(t *testing.T, reqs []results.Request, dels []deletion, seq int) string {
	t.Helper()
	c := cutRequests(reqs, dels)
	for name, rs := range map[string][]results.Request{"inFlight": c.inFlight, "pinned": c.pinned, "other": c.other} {
		for _, r := range rs {
			if r.Seq == seq {
				return name
			}
		}
	}
	t.Fatalf("request %d not classified", seq)
	return ""
}

// A failure is "pinned" only when its source port was pinned to the removed pod: with
// conn_reuse_mode=0 a reused port's SYN follows the port's previous connection, so that
// connection must have been answered by the removed pod. A reset at the deletion on a
// port that last reached a surviving pod (for example a conntrack flush too broad,
// cutting flows to every pod) is not explained by the pre-5.9 reuse.
func TestCutRequestsPinnedNeedsAPortPinnedToTheRemovedPod(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{{pod: "web-1", writtenAt: ms(1000), removedAt: ms(1030), goneAt: ms(1300)}}
	reqs := []results.Request{
		{Seq: 1, Start: ms(700), Dur: ms(10), Port: 40001, Pod: "web-1", Kind: results.KindOK},
		{Seq: 2, Start: ms(710), Dur: ms(10), Port: 40002, Pod: "web-4", Kind: results.KindOK},
		{Seq: 3, Start: ms(1280), Dur: ms(220), Port: 40001, Kind: results.KindReset}, // pinned to web-1
		{Seq: 4, Start: ms(1285), Dur: ms(220), Port: 40002, Kind: results.KindReset}, // its port last reached web-4
		{Seq: 5, Start: ms(1290), Dur: ms(220), Port: 40003, Kind: results.KindReset}, // a port never used before
	}
	for seq, want := range map[int]string{3: "pinned", 4: "other", 5: "other"} {
		if got := classOf(t, reqs, dels, seq); got != want {
			t.Errorf("request %d: %s, want %s", seq, got, want)
		}
	}
}

// The watch polls IPVS; on a loaded VM its reads lag (measured: the deletion seen 40-420
// ms after the proxier logged it, in 12 of 30 deletions of a 10-run rolling-repeat). A
// request begun after the watch last saw the real server, beyond the watch's slack, may
// have begun after the deletion: the deletion cannot be what cut it.
func TestCutRequestsBlameADeletionOnlyWithinTheWatchBracket(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{{pod: "web-2", writtenAt: ms(15000), removedAt: ms(15017), seenAt: ms(15630), goneAt: ms(15845)}}
	reqs := []results.Request{
		{Seq: 1, Start: ms(14800), Dur: ms(10), Port: 40011, Pod: "web-2", Kind: results.KindOK},
		{Seq: 2, Start: ms(14810), Dur: ms(10), Port: 40012, Pod: "web-2", Kind: results.KindOK},
		{Seq: 3, Start: ms(15600), Dur: ms(250), Port: 40012, Kind: results.KindReset}, // begun before the watch last saw it
		{Seq: 4, Start: ms(15734), Dur: ms(254), Port: 40011, Kind: results.KindReset}, // begun 104 ms after it was last seen, before it was seen gone: the deletion may have cut it
		{Seq: 5, Start: ms(15850), Dur: ms(254), Port: 40011, Kind: results.KindReset}, // begun after it was seen gone
		{Seq: 6, Start: ms(15500), Dur: ms(100), Port: 40013, Kind: results.KindReset}, // ended before it was last seen there
	}
	for seq, want := range map[int]string{3: "pinned", 4: "pinned", 5: "other", 6: "other"} {
		if got := classOf(t, reqs, dels, seq); got != want {
			t.Errorf("request %d: %s, want %s", seq, got, want)
		}
	}
}

// A real server deleted after its pod was killed was deleted late (the grace is 300 ms,
// the kill comes a second after the removal): the requests the pre-5.9 reuse sent to
// the pod meanwhile were lost to the kill (no answer: read timeout), not to a deletion
// the proxier could not avoid. They must fail the check.
func TestCutRequestsADeletionAfterTheKillExcusesNothing(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{
		{pod: "web-1", writtenAt: ms(1000), removedAt: ms(1020), seenAt: ms(2095), goneAt: ms(2100), killedAt: ms(2020)},
		{pod: "web-2", writtenAt: ms(7000), removedAt: ms(7020), seenAt: ms(7295), goneAt: ms(7300), killedAt: ms(8020)},
		{pod: "web-3", writtenAt: ms(13000), removedAt: ms(13020), goneAt: ms(14100), killedAt: ms(14020)}, // no read before it was gone
	}
	reqs := []results.Request{
		{Seq: 1, Start: ms(900), Dur: ms(10), Port: 40001, Pod: "web-1", Kind: results.KindOK},
		{Seq: 2, Start: ms(6900), Dur: ms(10), Port: 40002, Pod: "web-2", Kind: results.KindOK},
		{Seq: 3, Start: ms(2010), Dur: ms(5000), Port: 40001, Kind: results.KindReadTimeout}, // open at the kill
		{Seq: 4, Start: ms(7250), Dur: ms(250), Port: 40002, Kind: results.KindReset},        // cut by a timely deletion
		{Seq: 5, Start: ms(12900), Dur: ms(10), Port: 40003, Pod: "web-3", Kind: results.KindOK},
		{Seq: 6, Start: ms(14010), Dur: ms(5000), Port: 40003, Kind: results.KindReadTimeout},
	}
	for seq, want := range map[int]string{3: "other", 4: "pinned", 6: "other"} {
		if got := classOf(t, reqs, dels, seq); got != want {
			t.Errorf("request %d: %s, want %s", seq, got, want)
		}
	}
}

// The proxier cannot act on a removal before the API server has accepted it: a request
// begun while the write was still in progress (on a starved VM it took 0.2-0.6 s, and 12
// of 40 "pinned" cuts in two 10-run series began before the write returned) was in
// flight when the proxier learned of the removal, which is what the grace is for.
func TestCutRequestsBegunBeforeTheRemovalWasAcceptedAreInFlight(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{{pod: "web-3", writtenAt: ms(48600), removedAt: ms(49220), seenAt: ms(49470), goneAt: ms(49478)}}
	reqs := []results.Request{
		{Seq: 1, Start: ms(48400), Dur: ms(10), Port: 40012, Pod: "web-3", Kind: results.KindOK},
		{Seq: 2, Start: ms(48410), Dur: ms(10), Port: 40013, Pod: "web-3", Kind: results.KindOK},
		{Seq: 3, Start: ms(48631), Dur: ms(940), Port: 40012, Kind: results.KindReset}, // begun during the write
		{Seq: 4, Start: ms(49300), Dur: ms(400), Port: 40013, Kind: results.KindReset}, // begun after it returned
	}
	for seq, want := range map[int]string{3: "inFlight", 4: "pinned"} {
		if got := classOf(t, reqs, dels, seq); got != want {
			t.Errorf("request %d: %s, want %s", seq, got, want)
		}
	}
}

func TestCutRequestsInFlightPastTheGraceOutlastedIt(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	early := deletion{pod: "web-1", writtenAt: ms(1000), removedAt: ms(1030), goneAt: ms(1030) + finishGrace - ms(1)}
	late := deletion{pod: "web-2", writtenAt: ms(5000), removedAt: ms(5030), goneAt: ms(5030) + finishGrace}
	reqs := []results.Request{
		{Seq: 1, Start: ms(1020), Dur: ms(400), Kind: results.KindReset}, // cut before the grace could end: the proxier did not wait
		{Seq: 2, Start: ms(5020), Dur: ms(400), Kind: results.KindReset}, // open when it ended
	}
	c := cutRequests(reqs, []deletion{early, late})
	if len(c.inFlight) != 1 || c.inFlight[0].Seq != 1 || len(c.outlasted) != 1 || c.outlasted[0].Seq != 2 {
		t.Errorf("inFlight %v outlasted %v, want [1] and [2]", c.inFlight, c.outlasted)
	}
}

// A reset that reached the client before the watch last saw the real server
// was not the deletion's doing (seen in a run: 8 ms before it); it fails the
// run as "other", whatever its start.
func TestCutRequestsEndedBeforeTheRealServerWasLastSeenAreNotCuts(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	dels := []deletion{{pod: "web-3", writtenAt: ms(19770), removedAt: ms(19795), seenAt: ms(19796), goneAt: ms(19800)}}
	reqs := []results.Request{
		{Seq: 1, Start: ms(19276), Dur: ms(10), Port: 40015, Pod: "web-3", Kind: results.KindOK},
		{Seq: 2, Start: ms(19775), Dur: ms(13), Port: 40015, Kind: results.KindReset},
	}
	if got := classOf(t, reqs, dels, 2); got != "other" {
		t.Errorf("request 2: %s, want other", got)
	}
}
