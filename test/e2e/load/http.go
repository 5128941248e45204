// Package load is the client side of the e2e scenarios, run inside a client network
// namespace: short HTTP/1.0 requests from a fixed pool of reusable source ports, single
// requests, long-lived line streams and UDP queries.
package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// reuseAddr sets SO_REUSEADDR so that a source port can be bound again at once.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// Timeouts bound one request.
type Timeouts struct {
	Connect time.Duration
	Total   time.Duration
}

// Get makes one HTTP/1.0 request to target from source port port (0: any) and returns
// the answering pod's name, the request's kind and its error. The calling goroutine must
// be in the client's namespace (see guest.InNetns).
func Get(target netip.AddrPort, port int, t Timeouts) (string, string, error) {
	d := net.Dialer{Timeout: t.Connect, LocalAddr: &net.TCPAddr{Port: port}, Control: reuseAddr}
	c, err := d.Dial("tcp", target.String())
	if err != nil {
		return "", Classify(err), fmt.Errorf("connect to %s from port %d: %w", target, port, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(t.Total))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: e2e\r\n\r\n"); err != nil {
		return "", Classify(err), fmt.Errorf("send request to %s: %w", target, err)
	}
	resp, err := io.ReadAll(c) // the server closes first
	if err != nil {
		return "", Classify(err), fmt.Errorf("read response from %s: %w", target, err)
	}
	return parseResponse(resp)
}

func parseResponse(resp []byte) (string, string, error) {
	if len(resp) == 0 {
		return "", results.KindEOF, errors.New("connection closed without a response")
	}
	head, body, ok := bytes.Cut(resp, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.0 200 ")) {
		return "", results.KindBadResponse, fmt.Errorf("malformed response %q", truncate(resp))
	}
	return string(body), results.KindOK, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// Classify names the class of a network error.
func Classify(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return results.KindOK
	case errors.As(err, &errno):
		return classifyErrno(errno)
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		if strings.Contains(err.Error(), "dial") || strings.Contains(err.Error(), "connect") {
			return results.KindConnectTimeout
		}
		return results.KindReadTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return results.KindEOF
	}
	return results.KindOther
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func classifyErrno(errno syscall.Errno) string {
	switch errno {
	case syscall.ECONNREFUSED:
		return results.KindRefused
	case syscall.EHOSTUNREACH, syscall.ENETUNREACH:
		return results.KindUnreachable
	case syscall.ECONNRESET, syscall.EPIPE:
		return results.KindReset
	case syscall.EADDRINUSE, syscall.EADDRNOTAVAIL:
		return results.KindPortBusy
	case syscall.ETIMEDOUT:
		return results.KindConnectTimeout
	}
	return results.KindOther
}

// GetBody makes one HTTP/1.0 request to target and returns the body whatever the status
// (the health check node port answers 503 when it has no local endpoint).
func GetBody(target netip.AddrPort, t Timeouts) (string, error) {
	c, err := net.DialTimeout("tcp", target.String(), t.Connect)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", target, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(t.Total))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: e2e\r\n\r\n"); err != nil {
		return "", fmt.Errorf("send request to %s: %w", target, err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read response from %s: %w", target, err)
	}
	_, body, _ := bytes.Cut(resp, []byte("\r\n\r\n"))
	return string(body), nil
}
