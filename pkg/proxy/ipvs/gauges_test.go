package ipvs

import (
	"errors"

	discovery "k8s.io/api/discovery/v1"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics/testutil"
)

// wantGauges checks the real-server gauges of IPv4.
func wantGauges(t *testing.T, p *Proxier, when string, weightZero, finishing float64) {
	t.Helper()
	f := string(v1.IPv4Protocol)
	zero, err1 := testutil.GetGaugeMetricValue(p.metrics.RealServersWeightZero.WithLabelValues(f))
	fin, err2 := testutil.GetGaugeMetricValue(p.metrics.RealServersFinishing.WithLabelValues(f))
	if err1 != nil || err2 != nil {
		t.Fatalf("read gauges: %v %v", err1, err2)
	}
	if zero != weightZero || fin != finishing {
		t.Errorf("%s: weight 0 %v, finishing %v; want %v, %v", when, zero, fin, weightZero, finishing)
	}
}

// TestRealServerGaugesDraining: a graceful drain shows as one real server
// at weight 0 (not finishing) until it is deleted, through partial syncs.
func TestRealServerGaugesDraining(t *testing.T) {
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	wantGauges(t, p, "before any sync", 0, 0)
	cur := webOldAndNew(t, k, p, 2)
	wantGauges(t, p, "both pods ready", 0, 0)
	terminateOld(t, p, cur)
	wantGauges(t, p, "old pod terminating (weight 0, connected)", 1, 0)
	must(t, k.ipvs.SetConnections(vipKey, oldDest, 0, 0))
	p.mu.Lock()
	p.needFull = true // the drained check of a full sync
	p.mu.Unlock()
	syncOK(t, p)
	wantGauges(t, p, "drained and deleted", 0, 0)
}

// TestRealServerGaugesFinishing: under the immediate policy a removed
// endpoint with a request in flight is finishing (and at weight 0) until
// the finish check, not a sync, deletes it.
func TestRealServerGaugesFinishing(t *testing.T) {
	k := newKernel(t)
	p, clock, _ := finishingOld(t, k)
	wantGauges(t, p, "removed with a request in flight", 1, 1)
	for strings.Contains(ipvsDump(k), oldPod.String()) {
		if !clock.fireNext() {
			t.Fatalf("no finish check pending:\n%s", ipvsDump(k))
		}
	}
	wantGauges(t, p, "after the finish check deleted it", 0, 0)
}

// TestRealServerGaugesEdges: the weight-0 gauge goes back to 0 when the
// Service of a draining real server is deleted (its virtual server goes
// with it), stays at 1 while that deletion fails, and a new proxier
// (a restart) counts a leftover weight-0 real server from its first sync.
func TestRealServerGaugesEdges(t *testing.T) {
	t.Run("service deleted while draining", func(t *testing.T) {
		k := newKernel(t)
		p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
		terminateOld(t, p, webOldAndNew(t, k, p, 2))
		wantGauges(t, p, "draining", 1, 0)
		k.ipvs.Inject = func(op, _ string) error {
			if op == "DeleteService" {
				return errors.New("injected")
			}
			return nil
		}
		p.OnServiceDelete(svc("web", vip.String()))
		if err := p.syncProxyRules(); err == nil {
			t.Fatal("sync with a failing DeleteService succeeded")
		}
		wantGauges(t, p, "virtual server deletion failed", 1, 0)
		k.ipvs.Inject = nil
		syncOK(t, p)
		if strings.Contains(ipvsDump(k), vip.String()) {
			t.Fatalf("virtual server left:\n%s", ipvsDump(k))
		}
		wantGauges(t, p, "service deleted", 0, 0)
	})
	t.Run("restart", func(t *testing.T) {
		k := newKernel(t)
		p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
		terminateOld(t, p, webOldAndNew(t, k, p, 2))
		restarted := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
		wantGauges(t, restarted, "before the restarted proxier's first sync", 0, 0)
		restarted.OnServiceAdd(svc("web", vip.String()))
		restarted.OnEndpointSliceAdd(slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String())))
		syncOK(t, restarted)
		wantGauges(t, restarted, "leftover weight-0 real server, still connected", 1, 0)
	})
}
