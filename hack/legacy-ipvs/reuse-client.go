//go:build ignore

// reuse-client connects to ADDR from local port PORT, prints what the server sends until
// it closes, and exits. The test VM's busybox nc cannot pick its source port; this can.
// Build: go build -o reuse-client hack/legacy-ipvs/reuse-client.go
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: reuse-client ADDR PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "parse port %q: %v\n", os.Args[2], err)
		os.Exit(2)
	}
	if err := fetch(os.Args[1], port); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func fetch(addr string, port int) error {
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
		return fmt.Errorf("connect to %s from port %d: %w", addr, port, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return fmt.Errorf("set deadline on %s: %w", addr, err)
	}
	if _, err := io.Copy(os.Stdout, conn); err != nil {
		return fmt.Errorf("read from %s: %w", addr, err)
	}
	return nil
}
