package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// lockedBuffer is an io.Writer the hold goroutines and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) events(t *testing.T) []HoldEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []HoldEvent
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for {
		var e HoldEvent
		if err := dec.Decode(&e); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("decode hold output: %v", err)
		}
		out = append(out, e)
	}
}

// echoServer answers every line with "pod-a", delaying the third answer by delay, and
// closes each connection after answers lines.
func echoServer(t *testing.T, answers int, delay time.Duration) string {
	t.Helper()
	return nettest.ServeLines(t, func(n int) (string, bool) {
		if n == 3 {
			time.Sleep(delay)
		}
		return "pod-a\n", n < answers
	})
}

func TestHoldConnEvents(t *testing.T) {
	target := echoServer(t, 5, 300*time.Millisecond)
	var out lockedBuffer
	log := &eventLog{enc: json.NewEncoder(&out)}
	cfg := holdConfig{interval: 10 * time.Millisecond, stall: 100 * time.Millisecond, dialTimeout: time.Second}
	failed := holdConn(context.Background(), log, cfg, HoldEvent{Conn: target + "#0.1", Target: target})
	if !failed {
		t.Fatal("holdConn on a connection the server closed: not failed")
	}
	var kinds []string
	for _, e := range out.events(t) {
		kinds = append(kinds, e.Event)
		if e.Event != "error" && e.Pod != "pod-a" {
			t.Errorf("event %+v: pod %q, want pod-a", e, e.Pod)
		}
		if e.Event == "error" && (e.Kind != "eof" || e.Lines != 5) {
			t.Errorf("error event %+v: want kind eof after 5 lines", e)
		}
	}
	want := []string{"open", "stall", "resume", "error"}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
}

func TestHoldConnEndsWithContext(t *testing.T) {
	target := echoServer(t, 1<<30, 0)
	var out lockedBuffer
	log := &eventLog{enc: json.NewEncoder(&out)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cfg := holdConfig{interval: 10 * time.Millisecond, stall: time.Second, dialTimeout: time.Second}
	if holdConn(ctx, log, cfg, HoldEvent{Conn: target + "#0.1", Target: target}) {
		t.Fatalf("holdConn ended by its context reported a failure: %+v", out.events(t))
	}
	events := out.events(t)
	last := events[len(events)-1]
	if last.Event != "end" || last.Lines < 2 || last.LastReplyUnixNano == 0 {
		t.Errorf("last event %+v, want end after some lines", last)
	}
}
