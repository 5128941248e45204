package parity

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The state both sides render, one fact a line, sorted: a virtual server
// sorts just before its real servers.
func vsKey(proto string, addr netip.Addr, port uint16) string {
	return strings.ToUpper(proto) + " " + netip.AddrPortFrom(addr, port).String()
}

// vsLine ignores FlagHashed, which the kernel (and our fake) adds.
func vsLine(key, scheduler string, flags, timeout uint32) string {
	return fmt.Sprintf("vs %s scheduler=%s flags=%#x timeout=%d", key, scheduler, flags&^0x2, timeout)
}

func rsLine(key string, dest netip.AddrPort, weight int) string {
	return fmt.Sprintf("vs %s to %s weight=%d", key, dest, weight)
}

func boundLine(a netip.Addr) string { return "bound " + a.String() }

func setLine(name, typ string) string { return "set " + name + " " + typ }

func memberLine(set, entry string) string { return "set " + set + " has " + entry }

// connModel is the traffic both sides see: a fixed, seeded number of
// active connections on every real server, zero for about a third of them,
// or the same fixed number on all. It decides, identically on both sides,
// whether a removed TCP real server is deleted at once (drained) or set to
// weight 0.
type connModel struct {
	salt  string
	fixed *int
}

func (m connModel) active(vs string, dest netip.AddrPort) int {
	if m.fixed != nil {
		return *m.fixed
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%s", m.salt, vs, dest)
	return int(h.Sum32() % 3)
}

// stateDiff is how two renderings differ.
type stateDiff struct {
	onlyUpstream, onlyOurs []string
	// accepted are the differences deliberate rules explain, by rule name,
	// as "- line" (only upstream) or "+ line" (only ours).
	accepted map[string][]string
	same     int
}

// diffStates compares the renderings; rules may accept differences.
func diffStates(up, ours []string, x diffContext, rules []deliberate) stateDiff {
	d := stateDiff{accepted: map[string][]string{}}
	inOurs := make(map[string]bool, len(ours))
	for _, l := range ours {
		inOurs[l] = true
	}
	inUp := make(map[string]bool, len(up))
	for _, l := range up {
		inUp[l] = true
		switch {
		case inOurs[l]:
			d.same++
		case !d.accept(x, rules, "- "+l):
			d.onlyUpstream = append(d.onlyUpstream, l)
		}
	}
	for _, l := range ours {
		if !inUp[l] && !d.accept(x, rules, "+ "+l) {
			d.onlyOurs = append(d.onlyOurs, l)
		}
	}
	slices.Sort(d.onlyUpstream)
	slices.Sort(d.onlyOurs)
	return d
}

func (d *stateDiff) accept(x diffContext, rules []deliberate, line string) bool {
	for _, r := range rules {
		if r.accepts(x, line) {
			d.accepted[r.name] = append(d.accepted[r.name], line)
			return true
		}
	}
	return false
}

// lines renders the differences as a readable block.
func (d stateDiff) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  (%d lines equal; - only upstream, + only ours)\n", d.same)
	for _, name := range slices.Sorted(maps.Keys(d.accepted)) {
		fmt.Fprintf(&b, "  accepted, %q:\n    %s\n", name, strings.Join(d.accepted[name], "\n    "))
	}
	b.WriteString("  not accepted:\n")
	for _, l := range d.onlyUpstream {
		b.WriteString("  - " + l + "\n")
	}
	for _, l := range d.onlyOurs {
		b.WriteString("  + " + l + "\n")
	}
	return b.String()
}

// lines lists the differences as "- line" / "+ line", for exact checks.
func (d stateDiff) lines() []string {
	var out []string
	for _, l := range d.onlyUpstream {
		out = append(out, "- "+l)
	}
	for _, l := range d.onlyOurs {
		out = append(out, "+ "+l)
	}
	return out
}

// portKey is a virtual server key with any address: node ports.
func portKey(proto string, port int32) string {
	return strings.ToUpper(proto) + " *:" + strconv.Itoa(int(port))
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

type netipAddr = netip.Addr

func mustAddr(s string) netip.Addr         { return netip.MustParseAddr(s) }
func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
