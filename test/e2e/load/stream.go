package load

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
)

// Stream is a long-lived TCP connection that sends a line every interval and waits for
// each answer, until the kernel reports an error or its deadline passes.
type Stream struct {
	// Pod answered the first line.
	Pod  string
	conn net.Conn
	mu   sync.Mutex
	// failedAt, kind, err describe how the stream ended (kind "" while it runs;
	// "hung" when the deadline passed without an error).
	failedAt time.Time
	kind     string
	err      string
	done     chan struct{}
	// interval, deadline and lastAnswer (the last line answered) tell a
	// stream that answered until its deadline from one that stopped early.
	interval, deadline time.Duration
	opened             time.Time
	lastAnswer         time.Time
}

// KindHung is a stream whose deadline passed with no answer and no error.
const KindHung = "hung"

// OpenStream connects from the client namespace ns to target, learns which pod answers
// and keeps the stream going until deadline.
func OpenStream(ns netns.NsHandle, target netip.AddrPort, interval time.Duration, deadline time.Time) (*Stream, error) {
	var c net.Conn
	err := guest.InNetns(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", target.String(), 3*time.Second)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", target, err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	pod, err := exchange(c, r)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("first line on stream to %s: %w", target, err)
	}
	s := &Stream{Pod: pod, conn: c, done: make(chan struct{}), interval: interval, opened: time.Now()}
	s.deadline, s.lastAnswer = deadline.Sub(s.opened), s.opened
	go s.run(r, interval, deadline)
	return s, nil
}

func exchange(c net.Conn, r *bufio.Reader) (string, error) {
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func (s *Stream) run(r *bufio.Reader, interval time.Duration, deadline time.Time) {
	defer close(s.done)
	defer s.conn.Close()
	_ = s.conn.SetDeadline(deadline)
	for {
		if _, err := exchange(s.conn, r); err != nil {
			s.end(err, deadline)
			return
		}
		s.mu.Lock()
		s.lastAnswer = time.Now()
		s.mu.Unlock()
		time.Sleep(interval)
	}
}

func (s *Stream) end(err error, deadline time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedAt = time.Now()
	s.kind = Classify(err)
	if !s.failedAt.Before(deadline) && isTimeout(err) {
		s.kind = KindHung
	}
	s.err = err.Error()
}

// Wait waits until the stream has ended.
func (s *Stream) Wait() { <-s.done }

// Ended reports whether the stream has ended, when, how and with which error.
func (s *Stream) Ended() (bool, time.Time, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind != "", s.failedAt, s.kind, s.err
}

// answerGap is how long before its deadline a stream may have last been
// answered and still count as answering to the end: a line in flight when the
// deadline passes, on a VM that stalls for a second now and then.
const answerGap = 2 * time.Second

// AnsweredToTheEnd says whether the stream is still running, or ended only
// because its deadline passed while it was still being answered. Streams that
// share a deadline with ones that hang end together at it, so "ended" alone
// does not tell a broken stream from a healthy one.
func (s *Stream) AnsweredToTheEnd() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kind == "" {
		return true
	}
	deadline := s.opened.Add(s.deadline)
	return s.kind == KindHung && deadline.Sub(s.lastAnswer) <= s.interval+answerGap
}

// Close ends the stream now.
func (s *Stream) Close() {
	s.conn.Close()
	<-s.done
}

// AskUDP sends one datagram to target from source port port inside the client namespace
// ns and returns the answering pod's name.
func AskUDP(ns netns.NsHandle, port int, target netip.AddrPort, timeout time.Duration) (string, error) {
	var answer string
	err := guest.InNetns(ns, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{Port: port}, net.UDPAddrFromAddrPort(target))
		if err != nil {
			return fmt.Errorf("udp socket from port %d to %s: %w", port, target, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("who\n")); err != nil {
			return fmt.Errorf("send udp to %s from port %d: %w", target, port, err)
		}
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("read udp answer from %s on port %d: %w", target, port, err)
		}
		answer = string(buf[:n])
		return nil
	})
	return answer, err
}
