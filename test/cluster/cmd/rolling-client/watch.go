package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/ipvs"
)

// vipList is a repeatable -vip flag.
type vipList []string

func (v *vipList) String() string     { return strings.Join(*v, ",") }
func (v *vipList) Set(s string) error { *v = append(*v, s); return nil }

// realState is what the watcher compares between two polls of a real server.
type realState struct{ weight, active, inactive int }

func watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	var vips vipList
	fs.Var(&vips, "vip", "a virtual server VIP:port to watch (repeatable)")
	interval := fs.Duration("interval", 50*time.Millisecond, "poll interval")
	_ = fs.Parse(args)
	if len(vips) == 0 {
		return fmt.Errorf("watch: no -vip")
	}
	svcs := make([]*ipvs.Service, len(vips))
	for i, v := range vips {
		svc, err := virtualServer(v)
		if err != nil {
			return err
		}
		svcs[i] = svc
	}
	h, err := ipvs.New("")
	if err != nil {
		return fmt.Errorf("open IPVS netlink: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	seen := make([]map[string]realState, len(vips))
	for ; ; time.Sleep(*interval) {
		for i, svc := range svcs {
			now, err := realServersWithin(h, svc, stuckAfter)
			switch {
			case errors.Is(err, errStuck):
				// moby/ipvs waits forever for a netlink answer that never comes:
				// leave that handle to its goroutine and open another.
				fmt.Fprintf(os.Stderr, "rolling-client watch: no IPVS answer for %s in %v; reopening netlink\n", vips[i], stuckAfter)
				if h, err = ipvs.New(""); err != nil {
					return fmt.Errorf("reopen IPVS netlink: %w", err)
				}
				continue
			case err != nil:
				// A failed read says nothing of the real servers: no line, the last
				// poll stands (taken as "none", it printed a del for every one).
				fmt.Fprintf(os.Stderr, "rolling-client watch: read the real servers of %s: %v; keeping the last poll\n", vips[i], err)
				continue
			}
			for _, c := range changes(vips[i], seen[i], now) {
				c.UnixNano = time.Now().UnixNano()
				_ = enc.Encode(c)
			}
			seen[i] = now
		}
	}
}

// stuckAfter is how long the watcher waits for one IPVS read.
const stuckAfter = 5 * time.Second

// errStuck is realServersWithin's error when the read did not answer in time.
var errStuck = errors.New("no IPVS answer in time")

// destLister reads a virtual server's real servers (*ipvs.Handle; a fake in tests).
type destLister interface {
	GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error)
}

// realServersWithin is realServers, or errStuck when the read takes longer than d.
func realServersWithin(h destLister, svc *ipvs.Service, d time.Duration) (map[string]realState, error) {
	type result struct {
		now map[string]realState
		err error
	}
	done := make(chan result, 1)
	go func() {
		now, err := realServers(h, svc)
		done <- result{now, err}
	}()
	select {
	case r := <-done:
		return r.now, r.err
	case <-time.After(d):
		return nil, errStuck
	}
}

// realServers reads a virtual server's real servers, keyed "ip:port" as
// net.JoinHostPort writes them; none when it is not there (yet): the kernel answers a
// missing virtual server with an empty dump. An error is a failed read (netlink), which
// says nothing of the real servers.
func realServers(h destLister, svc *ipvs.Service) (map[string]realState, error) {
	dests, err := h.GetDestinations(svc)
	if err != nil {
		return nil, err
	}
	now := map[string]realState{}
	for _, d := range dests {
		now[net.JoinHostPort(d.Address.String(), strconv.Itoa(int(d.Port)))] =
			realState{weight: d.Weight, active: d.ActiveConnections, inactive: d.InactiveConnections}
	}
	return now, nil
}

// changes lists what differs between two polls of virtual server vip: real servers
// added, deleted, reweighted, and connection counts of those at weight 0 (a draining
// real server: the counts say whether a connection still holds it).
func changes(vip string, before, now map[string]realState) []Change {
	var out []Change
	for rs, st := range now {
		c := Change{Virtual: vip, Real: rs, Weight: st.weight, Active: st.active, Inactive: st.inactive}
		old, ok := before[rs]
		switch {
		case !ok:
			c.Event = "add"
		case old.weight != st.weight:
			c.Event = "weight"
		case st.weight == 0 && (old.active != st.active || old.inactive != st.inactive):
			c.Event = "conns"
		default:
			continue
		}
		out = append(out, c)
	}
	for rs, st := range before {
		if _, ok := now[rs]; !ok {
			out = append(out, Change{Event: "del", Virtual: vip, Real: rs, Weight: st.weight, Active: st.active, Inactive: st.inactive})
		}
	}
	return out
}

// Table is the node's IPVS table, as dump prints it.
type Table struct {
	Virtual []VirtualServer
}

// VirtualServer is one IPVS virtual server and its real servers, with the options that
// make it behave differently (persistence flag and timeout, netmask, family, PE).
type VirtualServer struct {
	Address                 string // "VIP:port" or "fwmark N"
	Protocol                string
	Scheduler               string
	Flags, Timeout, Netmask uint32
	Family                  uint16
	PEName                  string `json:",omitempty"`
	Real                    []RealServer
}

// RealServer is one real server of a VirtualServer; ConnectionFlags holds its forwarding
// method.
type RealServer struct {
	Address                        string
	Weight                         int
	ConnectionFlags                uint32
	UpperThreshold, LowerThreshold uint32
	Active, Inactive               int
}

func dump() error {
	h, err := ipvs.New("")
	if err != nil {
		return fmt.Errorf("open IPVS netlink: %w", err)
	}
	svcs, err := h.GetServices()
	if err != nil {
		return fmt.Errorf("list IPVS virtual servers: %w", err)
	}
	var t Table
	for _, s := range svcs {
		v := VirtualServer{Address: net.JoinHostPort(s.Address.String(), strconv.Itoa(int(s.Port))),
			Protocol: protocolName(s.Protocol), Scheduler: s.SchedName,
			Flags: s.Flags, Timeout: s.Timeout, Netmask: s.Netmask, Family: s.AddressFamily, PEName: s.PEName}
		if s.FWMark != 0 {
			v.Address = fmt.Sprintf("fwmark %d", s.FWMark)
		}
		dests, err := h.GetDestinations(s)
		if err != nil {
			return fmt.Errorf("list real servers of %s %s: %w", v.Protocol, v.Address, err)
		}
		for _, d := range dests {
			v.Real = append(v.Real, RealServer{Address: net.JoinHostPort(d.Address.String(), strconv.Itoa(int(d.Port))),
				Weight: d.Weight, ConnectionFlags: d.ConnectionFlags, UpperThreshold: d.UpperThreshold,
				LowerThreshold: d.LowerThreshold, Active: d.ActiveConnections, Inactive: d.InactiveConnections})
		}
		t.Virtual = append(t.Virtual, v)
	}
	return json.NewEncoder(os.Stdout).Encode(t)
}

func protocolName(p uint16) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 132:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}
