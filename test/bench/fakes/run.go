package fakes

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"time"

	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

// Options say what one measurement process does.
type Options struct {
	Side     string
	Services int
	// OneRemoved, HundredChanged and ServiceAdded are the iterations of
	// each kind of partial change; Budget caps the time spent on each kind
	// (at least one iteration always runs).
	OneRemoved, HundredChanged, ServiceAdded int
	Budget                                   time.Duration
	// HeapProfile, when set, is where to write a heap profile taken right
	// after the first sync (what the proxier keeps: inuse_space).
	HeapProfile string
	// RemovedProfile, when set, is where to write a heap profile taken
	// after the single-endpoint removals: its alloc_space less
	// HeapProfile's (pprof -base) is what those partial syncs allocated.
	RemovedProfile string
	// CPUProfile, when set, is where to write a CPU profile of the first
	// sync (time in the kernel shows under the system calls).
	CPUProfile string
}

// changesPerBatch is how many Services change in a "hundred" sync.
const changesPerBatch = 100

// bench is one side with the cluster as the proxier last saw it.
type bench struct {
	s         *side
	endpoints [][]netip.Addr
	slices    []*discovery.EndpointSlice
	// replaced counts each Service's replacement endpoints so far.
	replaced []int
	capped   bool
}

// Run makes the node's links, loads a cluster into a new proxier, and
// measures its first sync, then syncs after one endpoint removed, after
// 100 Services each had an endpoint replaced, and after one Service added.
func Run(ctx context.Context, o Options) (results.Fakes, error) {
	res := results.Fakes{Side: o.Side, Services: o.Services, Runs: 1}
	if err := upstreamproxier.ResetLinks([]upstreamproxier.Link{{Name: "eth0", Addrs: []netip.Prefix{nodeIP}}}, nil); err != nil {
		return res, err
	}
	s, err := newSide(ctx, o.Side)
	if err != nil {
		return res, err
	}
	b := load(s, o.Services)
	s.provider.OnServiceSynced() // not initialized yet: no sync
	stopCPUProfile, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return res, err
	}
	res.FullSync = measure(s, true, s.provider.OnEndpointSlicesSynced)
	stopCPUProfile()
	if o.HeapProfile != "" {
		if err := writeHeapProfile(o.HeapProfile); err != nil {
			return res, err
		}
	}
	res.OneRemoved = b.repeat(o.OneRemoved, o.Budget, b.removeOne)
	if o.RemovedProfile != "" {
		if err := writeHeapProfile(o.RemovedProfile); err != nil {
			return res, err
		}
	}
	res.HundredChanged = b.repeat(o.HundredChanged, o.Budget, b.replaceHundred)
	res.ServiceAdded = b.repeat(o.ServiceAdded, o.Budget, b.addService)
	res.Capped = b.capped
	res.RetainedBytes = retained(b.s)
	return res, nil
}

// load hands every Service and EndpointSlice to the proxier, as the
// informers' initial lists do.
func load(s *side, n int) *bench {
	b := &bench{s: s, endpoints: make([][]netip.Addr, n), slices: make([]*discovery.EndpointSlice, n), replaced: make([]int, n)}
	for i := range n {
		s.provider.OnServiceAdd(cluster.Service(i))
		b.endpoints[i] = cluster.InitialEndpoints(i)
		b.slices[i] = cluster.Slice(i, b.endpoints[i])
		s.provider.OnEndpointSliceAdd(b.slices[i])
	}
	return b
}

// setEndpoints sends Service i's new EndpointSlice.
func (b *bench) setEndpoints(i int, eps []netip.Addr) {
	next := cluster.Slice(i, eps)
	b.s.provider.OnEndpointSliceUpdate(b.slices[i], next)
	b.endpoints[i], b.slices[i] = eps, next
}

// removeOne drops the first endpoint of the it-th Service picked (spread
// over the cluster, a Service never twice while it has endpoints left).
func (b *bench) removeOne(it int) {
	i := pick(it, len(b.endpoints))
	if len(b.endpoints[i]) == 0 {
		return
	}
	b.setEndpoints(i, slices.Clone(b.endpoints[i][1:]))
}

// replaceHundred swaps one endpoint of each of 100 Services for a new one.
func (b *bench) replaceHundred(it int) {
	for k := range changesPerBatch {
		i := pick(it*changesPerBatch+k+1_000_003, len(b.endpoints))
		eps := slices.Clone(b.endpoints[i])
		if len(eps) == 0 {
			continue
		}
		eps[len(eps)-1] = cluster.Replacement(i, b.replaced[i])
		b.replaced[i]++
		b.setEndpoints(i, eps)
	}
}

// addService adds the next Service of the cluster with its EndpointSlice.
func (b *bench) addService(int) {
	i := len(b.endpoints)
	b.s.provider.OnServiceAdd(cluster.Service(i))
	eps := cluster.InitialEndpoints(i)
	slice := cluster.Slice(i, eps)
	b.s.provider.OnEndpointSliceAdd(slice)
	b.endpoints, b.slices, b.replaced = append(b.endpoints, eps), append(b.slices, slice), append(b.replaced, 0)
}

// pick spreads iteration numbers over the Services (a large prime stride).
func pick(it, n int) int { return (it * 7919) % n }

// repeat runs change-then-sync up to n times within budget and returns the
// median; the change is not measured, the sync is.
func (b *bench) repeat(n int, budget time.Duration, change func(it int)) results.Measure {
	start := time.Now()
	var all []results.Measure
	for it := range n {
		if it > 0 && time.Since(start) > budget {
			b.capped = true
			break
		}
		change(it)
		all = append(all, measure(b.s, false, b.s.provider.OnServiceSynced))
	}
	return median(all)
}

// measure times one sync (OnServiceSynced and OnEndpointSlicesSynced sync
// at once in both proxiers) with its kernel calls and allocations, and, when
// peak is set, the heap's high-water mark.
func measure(s *side, peak bool, sync func()) results.Measure {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	s.resetCalls()
	stop := func() int64 { return 0 }
	if peak {
		stop = sampleHeap()
	}
	start := time.Now()
	sync()
	elapsed := time.Since(start)
	high := stop()
	runtime.ReadMemStats(&after)
	m := results.Measure{
		Iterations: 1, Seconds: elapsed.Seconds(), KernelCalls: s.calls(),
		AllocBytes: int64(after.TotalAlloc - before.TotalAlloc), Allocs: int64(after.Mallocs - before.Mallocs),
	}
	if s.operations != nil {
		m.KernelOperations = s.operations()
	}
	if s.inFake != nil {
		in := s.inFake()
		m.InFakeSeconds, m.InFakeAllocBytes = in.Duration.Seconds(), int64(in.AllocBytes)
	}
	if peak {
		m.PeakHeapBytes = max(0, high-int64(before.HeapAlloc))
	}
	return m
}

// sampleHeap samples the heap in use every millisecond until the returned
// function is called, which returns the highest value seen.
func sampleHeap() func() int64 {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var high int64
		for {
			metrics.Read(s)
			high = max(high, int64(s[0].Value.Uint64()))
			select {
			case <-stop:
				done <- high
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

// retained measures the heap the proxier holds: the heap with it, minus
// the heap once the last reference to it is dropped (its fake kernel and
// the benchmark's objects stay).
func retained(s *side) int64 {
	with := liveHeap()
	s.provider = nil
	without := liveHeap()
	runtime.KeepAlive(s.kernel)
	return with - without
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC() // the first may leave finalizer-held objects
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// median takes each field's median over the iterations.
func median(all []results.Measure) results.Measure {
	if len(all) == 0 {
		return results.Measure{}
	}
	pickMedian := func(f func(results.Measure) float64) float64 {
		v := make([]float64, len(all))
		for i, m := range all {
			v[i] = f(m)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return results.Measure{
		Iterations:       len(all),
		Seconds:          pickMedian(func(m results.Measure) float64 { return m.Seconds }),
		KernelCalls:      int(pickMedian(func(m results.Measure) float64 { return float64(m.KernelCalls) })),
		KernelOperations: int(pickMedian(func(m results.Measure) float64 { return float64(m.KernelOperations) })),
		InFakeSeconds:    pickMedian(func(m results.Measure) float64 { return m.InFakeSeconds }),
		InFakeAllocBytes: int64(pickMedian(func(m results.Measure) float64 { return float64(m.InFakeAllocBytes) })),
		AllocBytes:       int64(pickMedian(func(m results.Measure) float64 { return float64(m.AllocBytes) })),
		Allocs:           int64(pickMedian(func(m results.Measure) float64 { return float64(m.Allocs) })),
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("write heap profile %s: %w", path, err)
	}
	return nil
}

// startCPUProfile starts a CPU profile written to path ("": none) and
// returns what stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile %s: %w", path, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
