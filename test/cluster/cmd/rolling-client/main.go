// Command rolling-client is the in-cluster side of the rolling-update scenario
// (test/cluster/rolling), shipped as the image ipvs-proxy/rolling-client:dev:
//
//	rolling-client client -target VIP:PORT -duration 90s
//	    from a pod: short HTTP/1.0 requests through the Service VIP from a fixed pool of
//	    source ports reused with SO_REUSEADDR (test/e2e/load's pool, as a busy nginx
//	    reuses its ports); prints one JSON Report line at the end.
//	rolling-client watch -vip VIP:PORT
//	    from a host-network privileged pod: polls the node's IPVS table every 50 ms and
//	    prints a JSON line whenever a real server of the virtual server appears or goes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/load"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// Report is what the client prints when it is done.
type Report struct {
	Summary  results.Summary
	Failures []results.Request
	// Slow are successful requests over results.SlowThreshold.
	Slow []results.Request
}

// Change is one real server appearing (Event "add") or going ("del") on the watched node.
type Change struct {
	Event string
	Real  string
	// UnixNano is the node's clock; the test stamps the line again when it reads it.
	UnixNano int64
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rolling-client client|watch [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "client":
		err = client(os.Args[2:])
	case "watch":
		err = watch(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (client or watch)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rolling-client:", err)
		os.Exit(1)
	}
}

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	target := fs.String("target", "", "the Service's VIP:port")
	duration := fs.Duration("duration", 90*time.Second, "how long to send requests")
	firstPort := fs.Int("first-port", 40000, "first source port of the pool")
	nports := fs.Int("ports", 64, "source ports in the pool")
	rate := fs.Float64("rate", 50, "requests per second at most")
	_ = fs.Parse(args)
	vip, err := netip.ParseAddrPort(*target)
	if err != nil {
		return fmt.Errorf("parse -target %q: %w", *target, err)
	}
	ns, err := netns.Get()
	if err != nil {
		return fmt.Errorf("open own network namespace: %w", err)
	}
	ports := make([]int, *nports)
	for i := range ports {
		ports[i] = *firstPort + i
	}
	cfg := load.PoolConfig{Target: vip, Ports: ports, Workers: 8, Rate: *rate,
		Timeouts: load.Timeouts{Connect: 3 * time.Second, Total: 5 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	fmt.Fprintf(os.Stderr, "rolling-client: %v of requests to %s from ports %d-%d\n", *duration, vip, ports[0], ports[len(ports)-1])
	reqs := load.RunPool(ctx, ns, cfg, time.Now())
	if len(reqs) == 0 {
		// RunPool drops a worker that cannot enter the namespace: nothing was sent.
		return fmt.Errorf("no request made to %s in %v", vip, *duration)
	}
	rep := Report{Summary: results.Summarize(reqs)}
	for _, r := range reqs {
		switch {
		case !r.OK():
			rep.Failures = append(rep.Failures, r)
		case r.Slow():
			rep.Slow = append(rep.Slow, r)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	vip := fs.String("vip", "", "the virtual server VIP:port")
	interval := fs.Duration("interval", 50*time.Millisecond, "poll interval")
	_ = fs.Parse(args)
	svc, err := virtualServer(*vip)
	if err != nil {
		return err
	}
	h, err := ipvs.New("")
	if err != nil {
		return fmt.Errorf("open IPVS netlink: %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	seen := map[string]bool{}
	for ; ; time.Sleep(*interval) {
		dests, err := h.GetDestinations(svc)
		if err != nil {
			dests = nil // the virtual server is not there (yet): no real servers
		}
		now := map[string]bool{}
		for _, d := range dests {
			now[net.JoinHostPort(d.Address.String(), strconv.Itoa(int(d.Port)))] = true
		}
		for rs := range now {
			if !seen[rs] {
				_ = enc.Encode(Change{Event: "add", Real: rs, UnixNano: time.Now().UnixNano()})
			}
		}
		for rs := range seen {
			if !now[rs] {
				_ = enc.Encode(Change{Event: "del", Real: rs, UnixNano: time.Now().UnixNano()})
			}
		}
		seen = now
	}
}

// virtualServer is the IPVS TCP virtual server for "VIP:port".
func virtualServer(vip string) (*ipvs.Service, error) {
	ap, err := netip.ParseAddrPort(vip)
	if err != nil {
		return nil, fmt.Errorf("parse -vip %q: %w", vip, err)
	}
	family := uint16(2) // AF_INET
	if ap.Addr().Is6() {
		family = 10 // AF_INET6
	}
	return &ipvs.Service{Address: net.IP(ap.Addr().AsSlice()), Port: ap.Port(), Protocol: 6, AddressFamily: family}, nil
}
