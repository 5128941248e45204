package ipvs

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// benchCluster loads n services with 10 endpoints each into a proxier.
func benchCluster(b *testing.B, n int) (*kernel, *Proxier, []*discovery.EndpointSlice) {
	t := &testing.T{}
	k := newKernel(t)
	p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
	slices := make([]*discovery.EndpointSlice, n)
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		p.OnServiceAdd(svc(name, fmt.Sprintf("10.%d.%d.%d", 96+i>>16, (i>>8)&255, i&255)))
		eps := make([]ep, 10)
		for j := range eps {
			eps[j] = readyEP(fmt.Sprintf("10.%d.%d.%d", 128+j, (i>>8)&255, i&255))
		}
		slices[i] = slice(name, discovery.AddressTypeIPv4, eps...)
		p.OnEndpointSliceAdd(slices[i])
	}
	return k, p, slices
}

func kernelCalls(k *kernel) int {
	n := 0
	for _, m := range []map[string]int{k.ipvs.Calls, k.ipset.Calls, k.netdev.Calls, k.ipt4.Calls, k.conntrack.Calls, k.sysctl.Calls} {
		for _, c := range m {
			n += c
		}
	}
	return n
}

func resetCalls(k *kernel) {
	for _, m := range []map[string]int{k.ipvs.Calls, k.ipset.Calls, k.netdev.Calls, k.ipt4.Calls, k.conntrack.Calls, k.sysctl.Calls} {
		clear(m)
	}
}

// BenchmarkFullSync measures the first sync of a cluster (everything new).
func BenchmarkFullSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			calls := 0
			for b.Loop() {
				b.StopTimer()
				k, p, _ := benchCluster(b, n)
				calls = timedSync(b, k, p)
			}
			b.ReportMetric(float64(calls), "kernel-calls/op")
		})
	}
}

// BenchmarkOneEndpointRemoved measures a sync after one endpoint of one
// service went away (immediate policy: one real server deleted). Its B/op
// and allocs/op are the same at every size: a partial sync allocates
// nothing in proportion to the cluster (make bench runs it with -benchmem).
func BenchmarkOneEndpointRemoved(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			k, p, slices := benchCluster(b, n)
			p.cfg.ImmediateTermination = true
			if err := p.syncProxyRules(); err != nil {
				b.Fatal(err)
			}
			calls := 0
			i := 0
			full := append([]*discovery.EndpointSlice(nil), slices...)
			for b.Loop() {
				b.StopTimer()
				s := slices[i%n]
				if len(s.Endpoints) == 0 {
					// More rounds than endpoints: refill the slice, untimed.
					p.OnEndpointSliceUpdate(s, full[i%n])
					if err := p.syncProxyRules(); err != nil {
						b.Fatal(err)
					}
					s = full[i%n]
				}
				removed := s.DeepCopy()
				removed.Endpoints = removed.Endpoints[1:]
				p.OnEndpointSliceUpdate(s, removed)
				slices[i%n] = removed
				i++
				calls = timedSync(b, k, p)
			}
			b.ReportMetric(float64(calls), "kernel-calls/op")
		})
	}
}

// BenchmarkNothingChanged measures a partial sync with nothing to do: the
// floor of every sync between two full ones.
func BenchmarkNothingChanged(b *testing.B) {
	benchRepeatedSync(b, []int{1000, 10000, 30000}, func(*Proxier) {})
}

// BenchmarkPeriodicFullSync measures the full sync every syncPeriod brings
// when nothing changed: re-read the kernel, compare everything, write nothing.
func BenchmarkPeriodicFullSync(b *testing.B) {
	benchRepeatedSync(b, []int{1000, 10000}, func(p *Proxier) {
		p.lastFullSync = p.lastFullSync.Add(-p.cfg.SyncPeriod)
	})
}

// benchRepeatedSync times syncs of an unchanged cluster after a first one;
// before runs ahead of each (it decides the kind of sync).
func benchRepeatedSync(b *testing.B, sizes []int, before func(*Proxier)) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			k, p, _ := benchCluster(b, n)
			if err := p.syncProxyRules(); err != nil {
				b.Fatal(err)
			}
			calls := 0
			for b.Loop() {
				before(p)
				resetCalls(k)
				if err := p.syncProxyRules(); err != nil {
					b.Fatal(err)
				}
				calls = kernelCalls(k)
			}
			b.ReportMetric(float64(calls), "kernel-calls/op")
		})
	}
}

// BenchmarkHundredEndpointsReplaced measures a sync after 100 services each
// had one endpoint replaced by a new one (a rolling update across the
// node's services; make bench's "100 replaced" row).
func BenchmarkHundredEndpointsReplaced(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			k, p, slices := benchCluster(b, n)
			if err := p.syncProxyRules(); err != nil {
				b.Fatal(err)
			}
			calls, round := 0, 0
			for b.Loop() {
				b.StopTimer()
				for j := range 100 {
					i := (round*100 + j) * 7919 % n
					s := slices[i]
					next := s.DeepCopy()
					next.Endpoints[0].Addresses = []string{fmt.Sprintf("10.%d.%d.%d", 200+round%50, (i>>8)&255, i&255)}
					p.OnEndpointSliceUpdate(s, next)
					slices[i] = next
				}
				round++
				calls = timedSync(b, k, p)
			}
			b.ReportMetric(float64(calls), "kernel-calls/op")
		})
	}
}

// timedSync restarts the (stopped) timer, runs one sync and returns the
// kernel calls it made.
func timedSync(b *testing.B, k *kernel, p *Proxier) int {
	resetCalls(k)
	b.StartTimer()
	if err := p.syncProxyRules(); err != nil {
		b.Fatal(err)
	}
	return kernelCalls(k)
}
