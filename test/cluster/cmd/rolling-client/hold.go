package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
)

// HoldEvent is a line hold prints: a connection opened ("open", Pod answered its first
// line), went without an answer for -stall ("stall"), answered again ("resume"), failed
// ("error", Kind and Err from the kernel or the server), or was still up when hold
// ended ("end").
type HoldEvent struct {
	Event string
	// Conn names the connection: "TARGET#slot.generation" (a reconnect is a new generation).
	Conn   string
	Target string
	Pod    string `json:",omitempty"`
	Kind   string `json:",omitempty"`
	Err    string `json:",omitempty"`
	// Lines answered so far; LastReplyUnixNano is when the last answer came.
	Lines             int
	LastReplyUnixNano int64 `json:",omitempty"`
	UnixNano          int64
}

// holdConfig is hold's flags.
type holdConfig struct {
	interval, stall, dialTimeout time.Duration
	reconnect                    bool
}

// eventLog prints HoldEvents one JSON line at a time.
type eventLog struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *eventLog) emit(e HoldEvent) {
	e.UnixNano = time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(e)
}

func hold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	var targets vipList
	fs.Var(&targets, "target", "VIP:port of an echo service (repeatable)")
	conns := fs.Int("conns", 1, "connections per target")
	duration := fs.Duration("duration", 0, "how long to hold them (0: until SIGTERM)")
	var cfg holdConfig
	fs.DurationVar(&cfg.interval, "interval", 200*time.Millisecond, "time between two lines on a connection")
	fs.DurationVar(&cfg.stall, "stall", 2*time.Second, "no answer for this long prints a stall event")
	fs.DurationVar(&cfg.dialTimeout, "dial-timeout", 3*time.Second, "connect timeout")
	fs.BoolVar(&cfg.reconnect, "reconnect", false, "open a new connection after one fails")
	_ = fs.Parse(args)
	if len(targets) == 0 {
		return errors.New("hold: no -target")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log := &eventLog{enc: json.NewEncoder(os.Stdout)}
	var wg sync.WaitGroup
	for _, t := range targets {
		for i := range *conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				holdSlot(ctx, log, cfg, t, i)
			}()
		}
	}
	wg.Wait()
	return nil
}

// holdSlot keeps one connection to target going until ctx ends; with reconnect, a
// failed one is replaced after a second.
func holdSlot(ctx context.Context, log *eventLog, cfg holdConfig, target string, slot int) {
	for gen := 1; ctx.Err() == nil; gen++ {
		ev := HoldEvent{Conn: fmt.Sprintf("%s#%d.%d", target, slot, gen), Target: target}
		failed := holdConn(ctx, log, cfg, ev)
		if !failed || !cfg.reconnect {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// holdConn opens one connection and exchanges lines on it until ctx ends ("end", false)
// or it fails ("error", true).
func holdConn(ctx context.Context, log *eventLog, cfg holdConfig, ev HoldEvent) bool {
	c, err := net.DialTimeout("tcp", ev.Target, cfg.dialTimeout)
	if err != nil {
		ev.Event, ev.Kind, ev.Err = "error", load.Classify(err), err.Error()
		log.emit(ev)
		return true
	}
	stopClose := context.AfterFunc(ctx, func() { c.Close() })
	defer stopClose()
	defer c.Close()
	r := bufio.NewReader(c)
	stalled := false
	for {
		err := exchange(c, r, cfg.stall, func() {
			if !stalled {
				stalled = true
				log.emit(withEvent(ev, "stall"))
			}
		}, &ev)
		if ctx.Err() != nil {
			log.emit(withEvent(ev, "end"))
			return false
		}
		if err != nil {
			ev.Event, ev.Kind, ev.Err = "error", load.Classify(err), err.Error()
			log.emit(ev)
			return true
		}
		switch {
		case ev.Lines == 1:
			log.emit(withEvent(ev, "open"))
		case stalled:
			stalled = false
			log.emit(withEvent(ev, "resume"))
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.interval):
		}
	}
}

func withEvent(ev HoldEvent, event string) HoldEvent {
	ev.Event = event
	return ev
}

// exchange sends a line and waits for the answer (the answering pod's name), calling
// onStall every time stall passes without it; it records the answer in ev.
func exchange(c net.Conn, r *bufio.Reader, stall time.Duration, onStall func(), ev *HoldEvent) error {
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return err
	}
	var answer string
	for {
		_ = c.SetReadDeadline(time.Now().Add(stall))
		part, err := r.ReadString('\n')
		answer += part
		if errors.Is(err, os.ErrDeadlineExceeded) {
			onStall() // a read deadline is not fatal to the connection: keep waiting
			continue
		}
		if err != nil {
			return err
		}
		pod := strings.TrimSpace(answer)
		if ev.Pod != "" && pod != ev.Pod {
			return fmt.Errorf("answer from pod %s on a connection to pod %s", pod, ev.Pod)
		}
		ev.Pod = pod
		ev.Lines++
		ev.LastReplyUnixNano = time.Now().UnixNano()
		return nil
	}
}
