package kernel

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/nftrules"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// rules is how a run sees a proxier's work in the kernel: IPVS for the
// IPVS proxiers, upstream's nftables table for its nftables proxier.
type rules interface {
	// programmed counts the benchmark's Services that have all their
	// initial endpoints in the kernel, and says when that was read.
	programmed(ctx context.Context, services int) (int, time.Time, error)
	// has says whether Service i still sends new connections to ep.
	has(ctx context.Context, i int, ep netip.Addr) (bool, error)
	// cost says what reading the kernel took, for the result's note ("" if
	// not worth a note).
	cost() string
}

// newRules opens the kernel view that fits the side.
func newRules(side string) (rules, error) {
	if side == results.UpstreamNFTables {
		return newNFTRules()
	}
	t, err := ipvs.New()
	if err != nil {
		return nil, fmt.Errorf("open IPVS: %w", err)
	}
	return ipvsRules{t}, nil
}

// ipvsRules reads IPVS over netlink: one dump of every virtual server with
// its real servers per poll.
type ipvsRules struct{ table ipvs.Interface }

func (r ipvsRules) programmed(_ context.Context, services int) (int, time.Time, error) {
	vss, err := r.table.List()
	if err != nil {
		return 0, time.Now(), fmt.Errorf("list IPVS: %w", err)
	}
	want := map[netip.Addr]bool{}
	for i := range services {
		want[cluster.ClusterIP(i)] = true
	}
	n := 0
	for _, vs := range vss {
		if want[vs.Address] && vs.Port == cluster.Port && len(vs.Destinations) == cluster.EndpointsPerService {
			n++
		}
	}
	return n, time.Now(), nil
}

func (r ipvsRules) has(_ context.Context, i int, ep netip.Addr) (bool, error) {
	key := ipvs.ServiceKey{Address: cluster.ClusterIP(i), Protocol: ipvs.TCP, Port: cluster.Port}
	dests, err := r.table.Destinations(key)
	if err != nil {
		return false, fmt.Errorf("read real servers of %v: %w", key, err)
	}
	return slices.ContainsFunc(dests, func(d ipvs.Destination) bool { return d.Address == ep }), nil
}

func (ipvsRules) cost() string { return "" }

// nftRules reads upstream's table ip kube-proxy. Until every Service has a
// chain it polls the chain names only, through knftables' netlink List (one
// in-process dump of chain headers: no nft process, no JSON), because the
// first sync writes the whole table in one transaction. Then it confirms
// the endpoints with `nft -j list table` (one nft process formatting the
// whole table, too costly to poll while the proxier starts; knftables'
// ListRules gives no rule contents), and times each update by reading the
// Service's own chain and DNAT map over netlink (nftrules.ChainReader: `nft
// list chain` fetches a cache that grows with the table). Neither the nft
// process nor the netlink reads count in the proxier's CPU.
type nftRules struct {
	nft    string
	chains knftables.Interface
	reader *nftrules.ChainReader
	// chainOf is each Service's chain, learnt from the confirming listing.
	chainOf map[int]string
	table   listings
	chain   listings
}

// listings counts nft runs and the time they took.
type listings struct {
	n     int
	total time.Duration
}

func (l listings) String() string {
	if l.n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d, mean %.3g ms", l.n, l.total.Seconds()*1e3/float64(l.n))
}

func newNFTRules() (*nftRules, error) {
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("find the nft binary for reading table %s %s: %w", nftrules.Family, nftrules.Table, err)
	}
	chains, err := knftables.New(knftables.IPv4Family, nftrules.Table, knftables.UseNetlink)
	if err != nil {
		return nil, fmt.Errorf("open nftables table %s %s: %w", nftrules.Family, nftrules.Table, err)
	}
	reader, err := nftrules.NewChainReader()
	if err != nil {
		return nil, err
	}
	return &nftRules{nft: nft, chains: chains, reader: reader, chainOf: map[int]string{}}, nil
}

func (r *nftRules) programmed(ctx context.Context, services int) (int, time.Time, error) {
	names, err := r.chains.List(ctx, "chain")
	at := time.Now()
	if err != nil {
		return 0, at, fmt.Errorf("list chains of nftables table %s %s: %w", nftrules.Family, nftrules.Table, err)
	}
	if n := countServiceChains(names); n < services {
		return n, at, nil
	}
	out, err := r.list(ctx, &r.table, "table", nftrules.Family, nftrules.Table)
	if err != nil {
		return 0, at, err
	}
	rs, err := nftrules.Parse(out)
	if err != nil {
		return 0, at, fmt.Errorf("read nftables table %s %s: %w", nftrules.Family, nftrules.Table, err)
	}
	return learnChains(rs, services, r.chainOf), at, nil
}

// countServiceChains counts upstream's service chains of the benchmark's
// Services ("service-<hash>-<namespace>/<name>/<protocol>/<port name>").
func countServiceChains(names []string) int {
	n := 0
	for _, name := range names {
		if strings.HasPrefix(name, "service-") && strings.Contains(name, "-"+cluster.Namespace+"/") {
			n++
		}
	}
	return n
}

// learnChains counts the Services whose endpoints in rs are exactly their
// initial ones, and records their chains in chainOf.
func learnChains(rs *nftrules.Ruleset, services int, chainOf map[int]string) int {
	n := 0
	for i := range services {
		chain, ok := rs.Chain(serviceKey(i))
		if !ok || !slices.Equal(rs.Endpoints(chain), initialTargets(i)) {
			continue
		}
		chainOf[i] = chain
		n++
	}
	return n
}

func serviceKey(i int) nftrules.ServiceKey {
	return nftrules.ServiceKey{Addr: cluster.ClusterIP(i), Protocol: "tcp", Port: cluster.Port}
}

// initialTargets are Service i's initial endpoints as DNAT targets, sorted
// as nftrules returns them.
func initialTargets(i int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range cluster.InitialEndpoints(i) {
		out = append(out, netip.AddrPortFrom(a, cluster.TargetPort))
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

func (r *nftRules) has(ctx context.Context, i int, ep netip.Addr) (bool, error) {
	chain, ok := r.chainOf[i]
	if !ok {
		return false, fmt.Errorf("no nftables chain known for service %s", cluster.ServiceName(i))
	}
	start := time.Now()
	targets, err := r.reader.Targets(chain)
	r.chain.add(time.Since(start))
	if err != nil {
		return false, err
	}
	return slices.Contains(targets, netip.AddrPortFrom(ep, cluster.TargetPort)), nil
}

func (l *listings) add(d time.Duration) {
	l.n++
	l.total += d
}

// list runs `nft -j list <what...>` and counts it in l.
func (r *nftRules) list(ctx context.Context, l *listings, what ...string) ([]byte, error) {
	start := time.Now()
	out, err := exec.CommandContext(ctx, r.nft, append([]string{"-j", "list"}, what...)...).Output()
	l.add(time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("nft -j list %s: %w%s", strings.Join(what, " "), err, stderrOf(err))
	}
	return out, nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func (r *nftRules) cost() string {
	return fmt.Sprintf("nftables read by: nft -j list table (start-up check) %s; netlink reads of one chain and its map "+
		"(update polls: the latency's resolution) %s", r.table, r.chain)
}
