package ipvs

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
)

// While the kernel refuses every write, a queued change keeps /healthz
// healthy until the health timeout has passed, then unhealthy until a sync
// succeeds: what upstream's health server means, given that the proxier
// reports a queued change and only successful syncs.
func TestHealthUnhealthyOnlyAfterTimeoutWhileSyncsFail(t *testing.T) {
	const timeout = 300 * time.Millisecond
	k := newKernel(t)
	hs := healthcheck.NewProxyHealthServer("127.0.0.1:0", timeout, nil)
	deps := k.deps(v1.IPv4Protocol)
	deps.HealthServer = hs
	p, err := NewProxier(context.Background(), testConfig(v1.IPv4Protocol), deps)
	must(t, err)
	p.OnServiceSynced()
	p.OnEndpointSlicesSynced()
	p.OnServiceAdd(svc("web", vip.String()))
	before := slice("web", discovery.AddressTypeIPv4, readyEP(oldPod.String()))
	p.OnEndpointSliceAdd(before)
	syncOK(t, p)

	k.ipvs.Inject = func(op, object string) error { return fmt.Errorf("%s %s: %w", op, object, syscall.EIO) }
	p.OnEndpointSliceUpdate(before, slice("web", discovery.AddressTypeIPv4, readyEP(newPod.String())))
	queued := time.Now()
	if err := p.syncProxyRules(); err == nil {
		t.Fatal("sync succeeded with every IPVS write failing")
	}
	if h := hs.Health(); !h.Healthy && time.Since(queued) < timeout {
		t.Errorf("unhealthy %v after the change was queued, before the %v timeout", time.Since(queued), timeout)
	}
	time.Sleep(timeout + 50*time.Millisecond)
	if err := p.syncProxyRules(); err == nil {
		t.Fatal("sync succeeded with every IPVS write failing")
	}
	if hs.Health().Healthy {
		t.Errorf("healthy %v after a change was queued that no sync could apply (timeout %v)", time.Since(queued), timeout)
	}

	k.ipvs.Inject = nil
	syncOK(t, p)
	if h := hs.Health(); !h.Healthy {
		t.Errorf("still unhealthy after a successful sync: %+v", h)
	}
	wantDump(t, "ipvs", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.2:8080 weight=1 active=0 inactive=0`)
}
