package ipvs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
)

// tableHeaderLines are the lines /proc/net/ip_vs starts with: the version,
// then the column names of a virtual server line and of a real server line.
const tableHeaderLines = 3

// parseTable reads the text of /proc/net/ip_vs: each virtual server with
// its real servers (address, port, weight and connection counts, as a
// netlink dump of them gives). A virtual server with no real servers is
// present with none; firewall-mark services and protocols we do not program
// are left out with their real servers, as are an IPv6 virtual server at an
// IPv4-mapped address and the IPv4 one at that address (both read back
// unmapped, the text cannot tell whose real servers are whose).
//
// The kernel prints a virtual server and its real servers as one record of
// its seq file, so a read never splits them, but records are found by
// position at each read: a virtual server added or deleted while the file
// is read can be missed or read twice. Callers read those they cannot find
// here another way.
func parseTable(r io.Reader) (map[ServiceKey][]Destination, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	table := map[ServiceKey][]Destination{}
	// mapped are the keys of IPv6 virtual servers at IPv4-mapped addresses:
	// netlink unmaps them too, so one may stand beside an IPv4 virtual
	// server of the same key; neither is taken from the text.
	var mapped map[ServiceKey]bool
	var current ServiceKey // zero: real servers are skipped
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		if line <= tableHeaderLines {
			if line == 1 && !bytes.HasPrefix(text, []byte("IP Virtual Server")) {
				return nil, fmt.Errorf("read IPVS table: line 1 %q: not the header", text)
			}
			continue
		}
		var buf [maxTableFields][]byte
		fields := splitFields(text, buf[:0])
		if len(fields) > 0 && string(fields[0]) == "->" {
			if !current.Address.IsValid() {
				continue
			}
			d, err := parseTableDestination(fields)
			if err != nil {
				return nil, fmt.Errorf("read IPVS table: real server of %s, line %q: %w", current, text, err)
			}
			table[current] = append(table[current], d)
			continue
		}
		key, ok, err := parseTableService(fields)
		if err != nil {
			return nil, fmt.Errorf("read IPVS table: line %q: %w", text, err)
		}
		current = ServiceKey{}
		if ok && key.Address.Is4In6() {
			key.Address = key.Address.Unmap()
			if mapped == nil {
				mapped = map[ServiceKey]bool{}
			}
			mapped[key] = true
			delete(table, key)
			continue
		}
		if ok && !mapped[key] {
			current = key
			// Present even without real servers; a second record of the
			// same service (read twice, see above) starts over.
			table[key] = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read IPVS table: %w", err)
	}
	return table, nil
}

// parseTableService parses "TCP  0A600001:0050 rr ..." or
// "TCP  [fd00:...:0001]:0050 rr ...". ok is false for a firewall-mark
// service ("FWM  ...") and a protocol we do not program.
func parseTableService(fields [][]byte) (key ServiceKey, ok bool, err error) {
	if len(fields) < 3 {
		return key, false, fmt.Errorf("%d fields, want at least 3", len(fields))
	}
	switch p := Protocol(fields[0]); p {
	case TCP, UDP, SCTP:
		key.Protocol = p
	default:
		return key, false, nil
	}
	ap, err := parseJoinedAddrPort(fields[1])
	if err != nil {
		return key, false, err
	}
	key.Address, key.Port = ap.Addr(), ap.Port()
	return key, true, nil
}

// parseTableDestination parses "-> 0AF40102:1F90 Masq 1 0 0": address and
// port, forwarding method, weight, active and inactive connections.
func parseTableDestination(fields [][]byte) (Destination, error) {
	if len(fields) != 6 {
		return Destination{}, fmt.Errorf("%d fields, want 6", len(fields))
	}
	ap, err := parseJoinedAddrPort(fields[1])
	if err != nil {
		return Destination{}, err
	}
	var counts [3]int
	for i, name := range []string{"weight", "active connections", "inactive connections"} {
		var ok bool
		if counts[i], ok = parseDecimal(fields[3+i]); !ok {
			return Destination{}, fmt.Errorf("%s %q: not a decimal count", name, fields[3+i])
		}
	}
	return Destination{
		DestinationKey: DestinationKey{Address: ap.Addr().Unmap(), Port: ap.Port()},
		Weight:         counts[0],
		ActiveConn:     counts[1],
		InactiveConn:   counts[2],
	}, nil
}

// parseJoinedAddrPort parses "0A600001:0050" (IPv4 as 8 hex digits in host
// order) or "[fd00:0000:...:0001]:0050" (the kernel's %pI6), port in hex.
// An IPv4-mapped IPv6 address is kept as such: callers unmap real servers,
// as the netlink read does, and tell such virtual servers apart.
func parseJoinedAddrPort(b []byte) (netip.AddrPort, error) {
	i := bytes.LastIndexByte(b, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("address and port %q: no colon", b)
	}
	addr, port := b[:i], b[i+1:]
	if len(addr) < 2 || addr[0] != '[' || addr[len(addr)-1] != ']' {
		if len(addr) != 8 {
			return netip.AddrPort{}, fmt.Errorf("address %q: neither 8 hex digits nor [IPv6]", addr)
		}
		return parseAddrPort(addr, port)
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, err := netip.ParseAddr(string(addr[1 : len(addr)-1]))
	if err != nil || !a.Is6() {
		return netip.AddrPort{}, fmt.Errorf("address %q: not IPv6", addr)
	}
	return netip.AddrPortFrom(a, p), nil
}

// The helpers below parse in place: the table has a dozen fields per real
// server and tens of thousands of real servers, read at every full sync.

// maxTableFields bounds the fields kept of a line (a real server has 6; a
// virtual server's options come after the 3 parsed).
const maxTableFields = 8

// splitFields appends the space-separated fields of line to fields (up to
// its capacity), as slices of line.
func splitFields(line []byte, fields [][]byte) [][]byte {
	for len(line) > 0 && len(fields) < cap(fields) {
		start := 0
		for start < len(line) && line[start] == ' ' {
			start++
		}
		end := start
		for end < len(line) && line[end] != ' ' {
			end++
		}
		if end > start {
			fields = append(fields, line[start:end])
		}
		line = line[end:]
	}
	return fields
}

// parseHex parses an unsigned hex number of at most bits bits.
func parseHex(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > bits/4 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// parseDecimal parses a non-negative decimal count (the kernel prints
// weights and connection counts of at most 31 bits).
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, v <= 1<<31-1
}
