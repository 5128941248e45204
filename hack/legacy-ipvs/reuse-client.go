//go:build ignore

// reuse-client connects to ADDR from local port PORT. The test VM's busybox nc cannot pick
// its source port; this can. Build: go build -o reuse-client hack/legacy-ipvs/reuse-client.go
//
//	reuse-client ADDR PORT        prints what the server sends until it closes, then the
//	                              milliseconds from the connect to the close:
//	                              "NAME MS" (a dropped SYN shows as MS >= 1000)
//	reuse-client -echo ADDR PORT  sends a line every 300 ms to an echo server and waits for
//	                              it back; at the first error prints "KIND MS", MS being the
//	                              milliseconds from that last write to the error
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	echo := len(args) > 0 && args[0] == "-echo"
	if echo {
		args = args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: reuse-client [-echo] ADDR PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "parse port %q: %v\n", args[1], err)
		os.Exit(2)
	}
	run := fetch
	if echo {
		run = stream
	}
	if err := run(args[0], port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func dial(addr string, port int) (net.Conn, error) {
	dialer := net.Dialer{
		LocalAddr: &net.TCPAddr{Port: port},
		Timeout:   5 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var sockErr error
			err := c.Control(func(fd uintptr) {
				sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			})
			if err != nil {
				return err
			}
			return sockErr
		},
	}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s from port %d: %w", addr, port, err)
	}
	return conn, nil
}

func fetch(addr string, port int) error {
	start := time.Now()
	conn, err := dial(addr, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return fmt.Errorf("set deadline on %s: %w", addr, err)
	}
	body, err := io.ReadAll(conn)
	if err != nil {
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	fmt.Printf("%s %d\n", strings.TrimSpace(string(body)), time.Since(start).Milliseconds())
	return nil
}

// stream echoes lines until the connection fails and reports how (reset, timeout, eof)
// and how long after its last write.
func stream(addr string, port int) error {
	conn, err := dial(addr, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	in := bufio.NewReader(conn)
	for i := 0; ; i++ {
		wrote := time.Now()
		_ = conn.SetDeadline(wrote.Add(5 * time.Second))
		_, err := fmt.Fprintf(conn, "%d\n", i)
		if err == nil {
			_, err = in.ReadString('\n')
		}
		if err != nil {
			if i == 0 {
				return fmt.Errorf("no echo from %s: %w", addr, err)
			}
			fmt.Printf("%s %d\n", kind(err), time.Since(wrote).Milliseconds())
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func kind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF):
		return "eof"
	}
	return "other"
}
