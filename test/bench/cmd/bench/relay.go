package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// runRelay connects stdin and stdout to a TCP address. qemu's
// guestfwd=...-cmd:PROGRAM spawns it once per guest connection; the
// guestfwd=...-tcp:ADDR form instead shares one host connection among all
// guest connections, so a second client (the benchmark driver beside the
// proxier) gets garbage.
func runRelay(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bench relay HOST:PORT")
	}
	conn, err := net.Dial("tcp", args[0])
	if err != nil {
		return fmt.Errorf("relay to %s: %w", args[0], err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, os.Stdin)
		_ = conn.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(os.Stdout, conn)
		done <- struct{}{}
	}()
	<-done // either side ending ends the relay: a guest close may not reach us
	return nil
}
