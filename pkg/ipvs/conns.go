package ipvs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
)

// Connection is one entry of the IPVS connection table, as
// /proc/net/ip_vs_conn shows it: a client's connection to a virtual server,
// forwarded to a real server.
type Connection struct {
	Protocol Protocol
	Client   netip.AddrPort
	Virtual  netip.AddrPort
	Real     netip.AddrPort
	// State is the kernel's name of the connection's state: for TCP
	// "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
	// "TIME_WAIT", "CLOSE", ...; "UDP" for UDP.
	State string
}

// Closing reports whether a TCP connection is past the point where either
// side sends data: both sides have closed (TIME_WAIT, CLOSE, LAST_ACK) or it
// never started (NONE). A connection in its handshake (SYN_RECV) is not
// closing, though IPVS counts it as inactive.
func (c Connection) Closing() bool {
	switch c.State {
	case "TIME_WAIT", "CLOSE", "LAST_ACK", "NONE":
		return true
	}
	return false
}

// parseConnections reads the text of /proc/net/ip_vs_conn and calls f with
// each entry until f returns false. Entries of protocols we do not program
// are skipped.
func parseConnections(r io.Reader, f func(Connection) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	header := true
	for sc.Scan() {
		if header { // "Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires PEName PEData"
			header = false
			continue
		}
		c, ok, err := parseConnection(sc.Bytes())
		if err != nil {
			return fmt.Errorf("read IPVS connection table: line %q: %w", sc.Text(), err)
		}
		if ok && !f(c) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read IPVS connection table: %w", err)
	}
	return nil
}

// parseConnection parses one line: protocol, then client, virtual and real
// address and port (IPv4 as 8 hex digits, IPv6 as the kernel's %pI6; ports
// as 4 hex digits), then the state. ok is false for a protocol we do not
// program.
func parseConnection(line []byte) (c Connection, ok bool, err error) {
	fields := bytes.Fields(line)
	if len(fields) < 8 {
		return c, false, fmt.Errorf("%d fields, want at least 8", len(fields))
	}
	switch p := Protocol(fields[0]); p {
	case TCP, UDP, SCTP:
		c.Protocol = p
	default:
		return c, false, nil
	}
	for i, dst := range []*netip.AddrPort{&c.Client, &c.Virtual, &c.Real} {
		if *dst, err = parseAddrPort(fields[1+2*i], fields[2+2*i]); err != nil {
			return c, false, err
		}
	}
	c.State = string(fields[7])
	return c, true, nil
}

// parseAddrPort parses an address and a port as the IPVS proc files print
// them: IPv4 as 8 hex digits in host order, IPv6 as the kernel's %pI6, the
// port in hex.
func parseAddrPort(addr, port []byte) (netip.AddrPort, error) {
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addr) == 8 {
		v, ok := parseHex(addr, 32)
		if !ok {
			return netip.AddrPort{}, fmt.Errorf("address %q: not 8 hex digits", addr)
		}
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		return netip.AddrPortFrom(a, p), nil
	}
	a, err := netip.ParseAddr(string(addr))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", addr, err)
	}
	return netip.AddrPortFrom(a, p), nil
}

// parsePort parses a port printed as hex.
func parsePort(port []byte) (uint16, error) {
	v, ok := parseHex(port, 16)
	if !ok {
		return 0, fmt.Errorf("port %q: not 4 hex digits", port)
	}
	return uint16(v), nil
}
