package kernel

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/nftrules"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// Each side's configuration is a valid KubeProxyConfiguration in its mode,
// with the periods in that mode's own section.
func TestProxierConfigPerSide(t *testing.T) {
	for _, tc := range []struct {
		side, mode string
		periods    func(v1alpha1.KubeProxyConfiguration) (sync, min string)
	}{
		{results.Ours, "ipvs", func(c v1alpha1.KubeProxyConfiguration) (string, string) {
			return c.IPVS.SyncPeriod.Duration.String(), c.IPVS.MinSyncPeriod.Duration.String()
		}},
		{results.Upstream, "ipvs", func(c v1alpha1.KubeProxyConfiguration) (string, string) {
			return c.IPVS.SyncPeriod.Duration.String(), c.IPVS.MinSyncPeriod.Duration.String()
		}},
		{results.UpstreamNFTables, "nftables", func(c v1alpha1.KubeProxyConfiguration) (string, string) {
			return c.NFTables.SyncPeriod.Duration.String(), c.NFTables.MinSyncPeriod.Duration.String()
		}},
	} {
		var c v1alpha1.KubeProxyConfiguration
		if err := yaml.UnmarshalStrict(proxierConfig(tc.side, "/bench/kubeconfig", 30*time.Second, true), &c); err != nil {
			t.Fatalf("%s: %v", tc.side, err)
		}
		if string(c.Mode) != tc.mode || c.ClientConnection.Kubeconfig != "/bench/kubeconfig" || !c.EnableProfiling {
			t.Errorf("%s: mode %q, kubeconfig %q, profiling %t", tc.side, c.Mode, c.ClientConnection.Kubeconfig, c.EnableProfiling)
		}
		if sync, min := tc.periods(c); sync != "30s" || min != "0s" {
			t.Errorf("%s: syncPeriod %s, minSyncPeriod %s in the %s section, want 30s and 0s", tc.side, sync, min, tc.mode)
		}
	}
}

func TestCountServiceChains(t *testing.T) {
	names := []string{"services", "mark-for-masquerade", "service-ABCDEFGH-bench/svc-00000/tcp/http",
		"endpoint-QRSTUVWX-bench/svc-00002/tcp/http__10.128.0.32/8080", "service-XYZ-kube-system/dns/udp/dns",
		"service-IJKLMNOP-bench/svc-00001/tcp/http"}
	if n := countServiceChains(names); n != 2 {
		t.Errorf("countServiceChains = %d, want 2", n)
	}
}

// A Service counts as programmed only with exactly its initial endpoints,
// and its chain is learnt for the update polls.
func TestLearnChains(t *testing.T) {
	b, err := os.ReadFile("../nftrules/testdata/table.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nftrules.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's Services hold 3, 1 and 2 endpoints, not the benchmark's 10.
	chainOf := map[int]string{}
	if n := learnChains(rs, 3, chainOf); n != 0 || len(chainOf) != 0 {
		t.Errorf("learnChains on partial Services = %d (%v), want 0", n, chainOf)
	}
	// Service 0 with its 10 endpoints, Service 1 with 9 of them.
	rs, err = nftrules.Parse([]byte(`{"nftables":[{"map":{"name":"service-ips","elem":[` +
		`[{"concat":["10.96.1.0","tcp",80]},{"goto":{"target":"service-A-bench/svc-00000/tcp/http"}}],` +
		`[{"concat":["10.96.1.1","tcp",80]},{"goto":{"target":"service-B-bench/svc-00001/tcp/http"}}]]}},` +
		dnatRule("service-A-bench/svc-00000/tcp/http", initialTargets(0)) + "," +
		dnatRule("service-B-bench/svc-00001/tcp/http", initialTargets(1)[1:]) + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := learnChains(rs, 2, chainOf); n != 1 || chainOf[0] != "service-A-bench/svc-00000/tcp/http" || len(chainOf) != 1 {
		t.Errorf("learnChains = %d (%v), want 1 (service 0's chain)", n, chainOf)
	}
	if got := initialTargets(0); len(got) != cluster.EndpointsPerService ||
		!slices.Contains(got, netip.AddrPortFrom(cluster.Endpoint(0, 0), cluster.TargetPort)) ||
		!slices.IsSortedFunc(got, func(a, b netip.AddrPort) int { return a.Compare(b) }) {
		t.Errorf("initialTargets(0) = %v", got)
	}
}

// dnatRule is nft's JSON of upstream's numgen DNAT rule in chain.
func dnatRule(chain string, targets []netip.AddrPort) string {
	var set []string
	for i, t := range targets {
		set = append(set, fmt.Sprintf(`[%d,{"concat":["%s",%d]}]`, i, t.Addr(), t.Port()))
	}
	return fmt.Sprintf(`{"rule":{"chain":%q,"expr":[{"dnat":{"family":"ip","addr":{"map":{"key":{"numgen":{"mode":"random","mod":%d}},"data":{"set":[%s]}}}}}]}}`,
		chain, len(targets), strings.Join(set, ","))
}

// Settled at the first look, the last sync's timestamp dates it; later, or
// with a timestamp outside the run, the time of the look does.
func TestSettleSeconds(t *testing.T) {
	start := time.Now().Add(-20 * time.Second)
	s := snapshot{syncsMetric + `_count{ip_family="IPv4"}`: 2,
		lastSyncMetric + `{ip_family="IPv4"}`: float64(start.Add(5*time.Second).UnixNano()) / 1e9}
	if got := settleSeconds(s, start, true); got < 4.9 || got > 5.1 {
		t.Errorf("first look: %.2f s, want 5", got)
	}
	if got := settleSeconds(s, start, false); got < 19.9 {
		t.Errorf("later look: %.2f s, want about 20", got)
	}
	s[lastSyncMetric+`{ip_family="IPv4"}`] = float64(start.Add(-time.Second).UnixNano()) / 1e9
	if got := settleSeconds(s, start, true); got < 19.9 {
		t.Errorf("sync before the start: %.2f s, want about 20", got)
	}
}
