// Command rolling-client is the in-cluster side of the rolling-update scenario
// (test/cluster/rolling), shipped as the image ipvs-proxy/rolling-client:dev:
//
//	rolling-client client -target VIP:PORT -duration 90s
//	    from a pod: short HTTP/1.0 requests through the Service VIP from a fixed pool of
//	    source ports reused with SO_REUSEADDR (test/e2e/load's pool, as a busy nginx
//	    reuses its ports); prints one JSON Report line at the end.
//	    With -all it also prints every request (results.EncodeLines data lines).
//	rolling-client watch -vip VIP:PORT [-vip VIP:PORT...]
//	    from a host-network privileged pod: polls the node's IPVS table every 50 ms and
//	    prints a JSON line whenever a real server of the virtual servers appears, goes,
//	    or changes weight (and, at weight 0, its connection counts).
//	rolling-client dump
//	    from a host-network privileged pod: prints the node's IPVS table as one JSON line.
//	rolling-client hold -target VIP:PORT [-target...] -conns N
//	    from a pod: N long-lived TCP connections per target to the test server's echo
//	    port, a line every 200 ms; prints a JSON line when each opens (with the pod that
//	    answers) and when each fails, and a summary at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
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
	// OriginUnixNano is the origin of the requests' Start (the client node's clock).
	OriginUnixNano int64
}

// Change is one real server appearing (Event "add"), going ("del"), changing weight
// ("weight") or, at weight 0, changing connection counts ("conns") on the watched node.
type Change struct {
	Event string
	// Virtual is the virtual server "VIP:port" (the watcher may watch several).
	Virtual string
	Real    string
	Weight  int
	// Active and Inactive are IPVS's ActiveConn and InActConn for the real server.
	Active, Inactive int
	// UnixNano is the node's clock; the test stamps the line again when it reads it.
	UnixNano int64
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rolling-client client|watch|dump|hold [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "client":
		err = client(os.Args[2:])
	case "watch":
		err = watch(os.Args[2:])
	case "dump":
		err = dump()
	case "hold":
		err = hold(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (client, watch, dump or hold)", os.Args[1])
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
	all := fs.Bool("all", false, "also print every request as results data lines (for plots)")
	_ = fs.Parse(args)
	if !(*rate > 0) {
		// load's schedule divides by it: at 0 the pool would send unpaced.
		return fmt.Errorf("-rate %v: requests per second above 0", *rate)
	}
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
	origin := time.Now()
	reqs := load.RunPool(ctx, ns, cfg, origin)
	if len(reqs) == 0 {
		// RunPool drops a worker that cannot enter the namespace: nothing was sent.
		return fmt.Errorf("no request made to %s in %v", vip, *duration)
	}
	rep := Report{Summary: results.Summarize(reqs), OriginUnixNano: origin.UnixNano()}
	for _, r := range reqs {
		switch {
		case !r.OK():
			rep.Failures = append(rep.Failures, r)
		case r.Slow():
			rep.Slow = append(rep.Slow, r)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return err
	}
	if !*all {
		return nil
	}
	lines, err := results.EncodeLines(&results.Run{Requests: reqs}, 0)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}

// virtualServer is the IPVS TCP virtual server for "VIP:port".
func virtualServer(vip string) (*ipvs.Service, error) {
	ap, err := netip.ParseAddrPort(vip)
	if err != nil {
		return nil, fmt.Errorf("parse -vip %q: %w", vip, err)
	}
	// An IPv4-mapped address is the IPv4 virtual server: moby/ipvs sends its 4 bytes.
	addr := ap.Addr().Unmap()
	family := uint16(2) // AF_INET
	if addr.Is6() {
		family = 10 // AF_INET6
	}
	return &ipvs.Service{Address: net.IP(addr.AsSlice()), Port: ap.Port(), Protocol: 6, AddressFamily: family}, nil
}
