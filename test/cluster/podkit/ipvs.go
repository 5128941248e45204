package podkit

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// IPVSTable mirrors rolling-client dump's JSON line: a node's IPVS table.
type IPVSTable struct {
	Virtual []IPVSVirtual
}

// IPVSVirtual is one virtual server ("VIP:port" or "fwmark N") and its real servers;
// Flags (persistent 0x1, hashed 0x2, ...), Timeout (persistence, s), Netmask and PEName are
// IPVS's, Family the address family (AF_INET 2, AF_INET6 10). Dumps older than these
// fields read them as zero.
type IPVSVirtual struct {
	Address, Protocol, Scheduler string
	Flags, Timeout, Netmask      uint32
	Family                       uint16
	PEName                       string
	Real                         []IPVSReal
}

// IPVSReal is one real server; Active and Inactive are IPVS's ActiveConn and InActConn,
// ConnectionFlags its forwarding method (masquerading 0, ...), the thresholds IPVS's.
type IPVSReal struct {
	Address                        string
	Weight                         int
	ConnectionFlags                uint32
	UpperThreshold, LowerThreshold uint32
	Active, Inactive               int
}

// ParseIPVSDump reads rolling-client dump's output as the container's log holds it. The
// log has more than the JSON line: moby/ipvs logs "Running modprobe ip_vs failed" through
// logrus (stderr) when it opens netlink, and the log interleaves stderr with stdout, so
// the warning may come before or after the table. The table is the last line that starts
// with '{' and decodes as one.
func ParseIPVSDump(log string) (IPVSTable, error) {
	var last error
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var t IPVSTable
		if last = json.Unmarshal([]byte(line), &t); last == nil {
			return t, nil
		}
	}
	if last != nil {
		return IPVSTable{}, fmt.Errorf("decode the IPVS dump's JSON line: %w", last)
	}
	return IPVSTable{}, fmt.Errorf("no JSON line in the IPVS dump: %.300q", log)
}

// Lines is the table for comparison: one line per virtual server (protocol, address,
// scheduler, and its options that are set) and per real server (with its weight, and its
// forwarding method and thresholds that are set), sorted; connection counts left out,
// since they change from one read to the next.
func (t IPVSTable) Lines() []string {
	var out []string
	for _, v := range t.Virtual {
		addr := v.Address
		if v.Family != 0 && strings.HasPrefix(addr, "fwmark ") {
			addr += fmt.Sprintf(" family %d", v.Family)
		}
		line := fmt.Sprintf("%s %s %s", v.Protocol, addr, v.Scheduler)
		for _, o := range []struct {
			name string
			v    uint32
		}{{"flags", v.Flags}, {"timeout", v.Timeout}, {"netmask", v.Netmask}} {
			if o.v != 0 {
				line += fmt.Sprintf(" %s %#x", o.name, o.v)
			}
		}
		if v.PEName != "" {
			line += " pe " + v.PEName
		}
		out = append(out, line)
		for _, r := range v.Real {
			rl := fmt.Sprintf("%s %s -> %s weight %d", v.Protocol, addr, r.Address, r.Weight)
			for _, o := range []struct {
				name string
				v    uint32
			}{{"fwd", r.ConnectionFlags}, {"upper", r.UpperThreshold}, {"lower", r.LowerThreshold}} {
				if o.v != 0 {
					rl += fmt.Sprintf(" %s %#x", o.name, o.v)
				}
			}
			out = append(out, rl)
		}
	}
	sort.Strings(out)
	return out
}
