package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// ServePod is the pod's process: it answers with its name on the HTTP, echo and UDP ports
// until it is killed.
func ServePod(name string) error {
	httpL, err := net.Listen("tcp", fmt.Sprintf(":%d", HTTPPort))
	if err != nil {
		return fmt.Errorf("pod %s: listen on http port: %w", name, err)
	}
	echoL, err := net.Listen("tcp", fmt.Sprintf(":%d", EchoPort))
	if err != nil {
		return fmt.Errorf("pod %s: listen on echo port: %w", name, err)
	}
	udp, err := net.ListenPacket("udp", fmt.Sprintf(":%d", UDPPort))
	if err != nil {
		return fmt.Errorf("pod %s: listen on udp port: %w", name, err)
	}
	errc := make(chan error, 3)
	go func() { errc <- acceptLoop(httpL, func(c net.Conn) { answerHTTP(c, name) }) }()
	go func() { errc <- acceptLoop(echoL, func(c net.Conn) { answerLines(c, name) }) }()
	go func() { errc <- answerUDP(udp, name) }()
	return <-errc
}

func acceptLoop(l net.Listener, handle func(net.Conn)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		go handle(c)
	}
}

// answerHTTP reads one request head and answers it with HTTP/1.0; the server closes first,
// so the client's side of the connection ends without TIME_WAIT and its port can be reused.
func answerHTTP(c net.Conn, name string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(name), name)
}

// answerLines answers every line with the pod's name until the client goes away.
func answerLines(c net.Conn, name string) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return
		}
	}
}

func answerUDP(pc net.PacketConn, name string) error {
	buf := make([]byte, 1500)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp read: %w", err)
		}
		_, _ = pc.WriteTo([]byte(strings.TrimSpace(name)), from)
	}
}
