package nettest

import (
	"bufio"
	"net"
	"testing"
)

// ServeLines listens on a loopback port until the test ends and, on each connection,
// calls answer with the number (from 1) of every line it reads; answer returns what to
// write back ("" for nothing) and whether to keep the connection. Returns the address.
func ServeLines(t testing.TB, answer func(n int) (reply string, keep bool)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveLines(c, answer)
		}
	}()
	return l.Addr().String()
}

func serveLines(c net.Conn, answer func(n int) (string, bool)) {
	defer c.Close()
	r := bufio.NewReader(c)
	for n := 1; ; n++ {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		reply, keep := answer(n)
		if reply != "" {
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
		if !keep {
			return
		}
	}
}
