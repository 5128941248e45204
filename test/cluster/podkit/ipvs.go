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

// IPVSVirtual is one virtual server ("VIP:port" or "fwmark N") and its real servers.
type IPVSVirtual struct {
	Address, Protocol, Scheduler string
	Real                         []IPVSReal
}

// IPVSReal is one real server; Active and Inactive are IPVS's ActiveConn and InActConn.
type IPVSReal struct {
	Address          string
	Weight           int
	Active, Inactive int
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
// scheduler) and per real server (with its weight), sorted; connection counts left out,
// since they change from one read to the next.
func (t IPVSTable) Lines() []string {
	var out []string
	for _, v := range t.Virtual {
		out = append(out, fmt.Sprintf("%s %s %s", v.Protocol, v.Address, v.Scheduler))
		for _, r := range v.Real {
			out = append(out, fmt.Sprintf("%s %s -> %s weight %d", v.Protocol, v.Address, r.Address, r.Weight))
		}
	}
	sort.Strings(out)
	return out
}
