package load

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// echoServer answers every line with "pod-a" until answerLines lines (0: all).
func echoServer(t *testing.T, answerLines int) netip.AddrPort {
	t.Helper()
	addr := nettest.ServeLines(t, func(n int) (string, bool) {
		if answerLines == 0 || n <= answerLines {
			return "pod-a\n", true
		}
		return "", true
	})
	return netip.MustParseAddrPort(addr)
}

func openTestStream(t *testing.T, target netip.AddrPort, deadline time.Duration) *Stream {
	t.Helper()
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	s, err := OpenStream(ns, target, 50*time.Millisecond, time.Now().Add(deadline))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A stream answered until its deadline counts as working although it ended
// there (streams sharing a deadline with hung ones end with them).
func TestStreamAnsweredToItsDeadlineWorked(t *testing.T) {
	s := openTestStream(t, echoServer(t, 0), 700*time.Millisecond)
	s.Wait()
	if _, _, kind, _ := s.Ended(); kind != KindHung {
		t.Fatalf("stream ended as %q, want %q at its deadline", kind, KindHung)
	}
	if !s.AnsweredToTheEnd() {
		t.Error("a stream answered until its deadline does not count as answered to the end")
	}
}

// A stream that stopped being answered long before its deadline did not work.
func TestStreamUnansweredBeforeItsDeadlineDidNotWork(t *testing.T) {
	s := openTestStream(t, echoServer(t, 2), 3*time.Second)
	s.Wait()
	if s.AnsweredToTheEnd() {
		t.Error("a stream unanswered for ~3 s before its deadline counts as answered to the end")
	}
}
