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
//	reuse-client -probe SRC DST   sends one bare TCP ACK from SRC (ip:port, any address) to
//	                              DST through the local stack (raw socket): IPVS sees it in
//	                              LOCAL_OUT like a packet of the client's connection
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	if len(args) == 3 && args[0] == "-probe" {
		if err := probe(args[1], args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
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

// probe sends one TCP ACK from src to dst with a raw socket (IP header included).
func probe(src, dst string) error {
	s, err := netip.ParseAddrPort(src)
	if err != nil {
		return fmt.Errorf("parse %q: %w", src, err)
	}
	d, err := netip.ParseAddrPort(dst)
	if err != nil {
		return fmt.Errorf("parse %q: %w", dst, err)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer syscall.Close(fd)
	pkt := make([]byte, 40)
	ip, tcp := pkt[:20], pkt[20:]
	ip[0], ip[8], ip[9] = 0x45, 64, syscall.IPPROTO_TCP
	binary.BigEndian.PutUint16(ip[2:], 40)
	sa, da := s.Addr().As4(), d.Addr().As4()
	copy(ip[12:16], sa[:])
	copy(ip[16:20], da[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	binary.BigEndian.PutUint16(tcp[0:], s.Port())
	binary.BigEndian.PutUint16(tcp[2:], d.Port())
	binary.BigEndian.PutUint32(tcp[4:], 1)
	binary.BigEndian.PutUint32(tcp[8:], 1)
	tcp[12], tcp[13] = 5<<4, 0x10 // 20-byte header, ACK
	binary.BigEndian.PutUint16(tcp[14:], 1024)
	var pseudo uint32
	for _, w := range [][]byte{sa[:2], sa[2:], da[:2], da[2:]} {
		pseudo += uint32(binary.BigEndian.Uint16(w))
	}
	pseudo += syscall.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
	err = syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: da})
	switch {
	case errors.Is(err, syscall.EPERM):
		// A netfilter hook dropped it: IPVS, on an entry whose real server is gone.
		fmt.Println("probe dropped in LOCAL_OUT (EPERM)")
	case err != nil:
		return fmt.Errorf("send probe %s -> %s: %w", src, dst, err)
	default:
		fmt.Println("probe sent")
	}
	return nil
}

// checksum is the Internet checksum of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
