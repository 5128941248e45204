package scenario

import (
	"fmt"
	"time"

	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// watchSlack is how late watchDeletion may see a deletion (its poll period plus an
// IPVS read).
const watchSlack = 10 * time.Millisecond

// cuts sorts the failed requests of a gate-on rolling update by how a real server's
// deletion met them. A request open when a removed endpoint's real server was
// deleted was cut by that deletion; whether the proxier could have saved it depends
// on when it began:
//   - inFlight: begun before the API server had accepted the endpoint's removal
//     (removedAt: the proxier cannot act on it sooner; on a starved VM the write
//     itself took 0.2-0.6 s). The finish grace exists for these: none may fail.
//   - pinned: begun after the removal, yet sent to the removed pod (its source
//     port's previous connection was answered by that pod). Only a kernel
//     that keeps a reused source port on its old real server whatever its weight
//     does that (before 5.9 with conn_reuse_mode=0, the legacy profile): until the
//     deletion every new connection from such a port lands there, and the deletion
//     cuts the ones still open (at an idle instant there are none; at the end of
//     the grace, or between the last connection-table read and the deletion, there
//     may be). Deleting sooner would cut more of the in-flight ones instead.
//     A deletion after the pod's kill explains none: the real server outlived its
//     pod, and the requests it sent there were lost to the kill.
//   - outlasted: in flight at the removal, but cut by a deletion at least FinishGrace
//     after it: the grace waits at most that long (from when the proxier acts, which
//     is after the removal), so such a request was still open when it ended. On a
//     quiet VM a request takes milliseconds; on a starved one it can take longer.
//   - other: every other failure (none may happen).
type cuts struct {
	inFlight, outlasted, pinned, other []results.Request
}

// finishGrace is the proxier's FinishGrace in the scenarios (its default).
const finishGrace = ipvsproxy.DefaultFinishGrace

// cutRequests classifies the failed requests of reqs against the deletions.
func cutRequests(reqs []results.Request, dels []deletion) cuts {
	var c cuts
	for _, r := range reqs {
		if r.OK() {
			continue
		}
		d, ok := cutBy(r, dels)
		switch {
		case !ok:
			c.other = append(c.other, r)
		case r.Start < d.removedAt && d.goneAt-d.removedAt >= finishGrace:
			c.outlasted = append(c.outlasted, r)
		case r.Start < d.removedAt:
			c.inFlight = append(c.inFlight, r)
		case d.afterKill(), previousAnswer(reqs, r) != d.pod:
			c.other = append(c.other, r)
		default:
			c.pinned = append(c.pinned, r)
		}
	}
	return c
}

// afterKill says whether the real server was still in IPVS after its pod was killed:
// the watch read it then (or, without such a read, found it gone more than its slack
// after the kill).
func (d deletion) afterKill() bool {
	if d.killedAt == 0 {
		return false
	}
	if d.seenAt > 0 {
		return d.seenAt >= d.killedAt
	}
	return d.goneAt-watchSlack > d.killedAt
}

// previousAnswer is the pod that answered the previous connection from r's source
// port (the one that ended last before r), "" when there was none or it failed: the
// pod a pre-5.9 kernel sends r to when it reuses that connection's entry. A port is
// held by one request at a time, so that connection ended before r's began.
func previousAnswer(reqs []results.Request, r results.Request) string {
	var prev *results.Request
	for i := range reqs {
		q := &reqs[i]
		if q.Port == r.Port && q.Seq != r.Seq && q.End() < r.End() && (prev == nil || q.End() > prev.End()) {
			prev = q
		}
	}
	if prev == nil || !prev.OK() {
		return ""
	}
	return prev.Pod
}

// cutBy finds the deletion a failed request was open at: one that failed after its
// connection was established (a reset, an end of file, or no answer: the pod may
// have been killed before answering, and the client had nothing more to send to be
// reset) and was open at some instant the deletion may have happened: after the
// watch last read the real server (seenAt; without such a read, the removal) and
// no later than the read that found it gone (goneAt). On a starved VM that bracket
// can be wide (the watch's own reads are late); the run notes it per deletion.
func cutBy(r results.Request, dels []deletion) (deletion, bool) {
	switch r.Kind {
	case results.KindReset, results.KindEOF, results.KindReadTimeout:
	default:
		return deletion{}, false
	}
	for _, d := range dels {
		if d.goneAt == 0 {
			continue
		}
		if r.Start <= d.goneAt && r.End() >= d.deletedAfter() {
			return d, true
		}
	}
	return deletion{}, false
}

// deletedAfter is the latest instant the real server is known to have been there.
func (d deletion) deletedAfter() time.Duration {
	if d.seenAt > 0 {
		return d.seenAt
	}
	return d.removedAt
}

// describe lists requests for a check's detail line.
func describe(reqs []results.Request) string {
	s := ""
	for i, r := range reqs {
		if i == 3 {
			return s + fmt.Sprintf(" ... (%d in all)", len(reqs))
		}
		s += fmt.Sprintf(" [t=%.3fs +%s port %d %s]", r.Start.Seconds(), r.Dur.Round(time.Millisecond), r.Port, r.Kind)
	}
	return s
}
