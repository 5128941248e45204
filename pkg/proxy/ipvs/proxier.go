package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxymetrics "k8s.io/kubernetes/pkg/proxy/metrics"
	"k8s.io/kubernetes/pkg/proxy/runner"
)

// Proxier programs one IP family's services into IPVS. It implements
// k8s.io/kubernetes/pkg/proxy.Provider.
type Proxier struct {
	// phases times the steps of the sync in progress (logged at -v=4).
	phases        phaseTimer
	cfg           Config
	deps          Deps
	logger        klog.Logger
	metrics       *Metrics
	nodePortCIDRs []netip.Prefix

	serviceChanges   *proxy.ServiceChangeTracker
	endpointsChanges *proxy.EndpointsChangeTracker
	serviceHealth    healthcheck.ServiceHealthServer
	syncRunner       *runner.BoundedFrequencyRunner
	// loopEnd guards loopEnded: a sync is requested under its read lock,
	// and the loop's end is marked under its write lock before the runner
	// closes its channel (a Run after that would panic).
	loopEnd     sync.RWMutex
	loopEnded   bool
	initialized atomic.Bool
	// looping is set once SyncLoop runs; only then does a full sync arm
	// the timer of the next (which keeps the proxier reachable).
	looping atomic.Bool
	// endpointNodes are the nodes of not-ready endpoints (own lock).
	endpointNodes *endpointNodes

	mu             sync.Mutex // guards the fields below and every sync
	svcPortMap     proxy.ServicePortMap
	endpointsMap   proxy.EndpointsMap
	topologyLabels map[string]string
	// notReadyNodes are the nodes the API server reports as not Ready, as
	// of this sync (taken from nodeReadiness).
	notReadyNodes        sets.Set[string]
	nodeReadiness        nodeReadiness
	servicesSynced       bool
	endpointSlicesSynced bool
	// firstSync is true until a sync succeeds: that sync also removes
	// weight-0 real servers left by an earlier run.
	firstSync bool
	// needFull asks for a full sync next (after an error, a topology change).
	needFull bool
	// desiredStale asks the next full sync to rebuild the whole desired
	// state: the node's topology labels changed.
	desiredStale bool
	// unbuilt (ports or endpoints) and unbuiltServices (the Service
	// object) name the changes a sync took from the trackers but could
	// not build into the desired state (a kernel read failed first).
	unbuilt, unbuiltServices sets.Set[types.NamespacedName]
	// triggerTimes are the EndpointSlice changes taken from the tracker
	// and not yet programmed by a successful sync.
	triggerTimes map[types.NamespacedName][]time.Time
	// lastFullSync is when the last successful full sync ended;
	// fullSyncTimer runs the next one a period later.
	lastFullSync  time.Time
	fullSyncTimer *time.Timer
	// kernel is what the kernel holds, as last read and since written.
	kernel *observedState
	// desired is the desired state as of the last sync.
	desired       *desiredState
	healthChecked map[types.NamespacedName]struct{}
	// finishing are the real servers of removed endpoints kept while their
	// connections finish, with when they started (Config.FinishGrace).
	finishing map[destRef]time.Time
	// weightZero counts the real servers at weight 0 per virtual server
	// of kernel (for the gauge; see countWeightZero).
	weightZero weightZeroCount
	// finishCheckPending says checkFinishing is already scheduled.
	finishCheckPending atomic.Bool
	// afterFunc is time.AfterFunc (tests replace it to drive the clock).
	afterFunc func(time.Duration, func())
	// flushes are conntrack flushes that failed, retried by flushTimer.
	flushes    pendingFlushes
	flushTimer *time.Timer
	lastNAT    []byte
	lastFilter []byte
	// savedRules is our part of each table (ourRules) as iptables-save
	// showed it right after the last write (a full sync's, or a partial
	// sync's read back in the background); rulesGen counts the writes, so
	// that a read-back from before one is dropped (an audit whose table's
	// record was replaced reads it again).
	savedRules map[string][]byte
	rulesGen   uint64
	audit      ruleAudit
}

var _ proxy.Provider = &Proxier{}

// NewProxier checks the kernel prerequisites (sysctls, dummy device,
// timeouts) and returns a proxier ready for informer events; SyncLoop runs it.
func NewProxier(ctx context.Context, cfg Config, deps Deps) (*Proxier, error) {
	logger := klog.FromContext(ctx).WithValues("ipFamily", cfg.IPFamily)
	npCIDRs, err := parseFamilyCIDRs(cfg.NodePortAddresses, cfg.IPFamily)
	if err != nil {
		return nil, fmt.Errorf("nodePortAddresses: %w", err)
	}
	if cfg.MinSyncPeriod > cfg.SyncPeriod {
		return nil, fmt.Errorf("ipvs minSyncPeriod %v is longer than syncPeriod %v", cfg.MinSyncPeriod, cfg.SyncPeriod)
	}
	if cfg.SyncPeriod <= 0 {
		return nil, fmt.Errorf("ipvs syncPeriod must be positive, got %v", cfg.SyncPeriod)
	}
	p := &Proxier{
		cfg: cfg, deps: deps, logger: logger, metrics: deps.Metrics, nodePortCIDRs: npCIDRs,
		svcPortMap: make(proxy.ServicePortMap), endpointsMap: make(proxy.EndpointsMap),
		firstSync: true, serviceHealth: deps.ServiceHealthServer, savedRules: map[string][]byte{}, audit: ruleAudit{changed: map[string]bool{}, toRecord: map[string][]byte{}},
		endpointNodes: newEndpointNodes(cfg.IPFamily),
		afterFunc:     func(d time.Duration, f func()) { time.AfterFunc(d, f) },
	}
	if p.metrics == nil {
		p.metrics = NewMetrics()
	}
	initFamilyMetrics(cfg.IPFamily)
	p.metrics.initFamily(cfg.IPFamily)
	if p.serviceHealth == nil {
		p.serviceHealth = healthcheck.NewFakeServiceHealthServer()
	}
	p.serviceChanges = proxy.NewServiceChangeTracker(cfg.IPFamily, p.makeServicePort, nil)
	p.endpointsChanges = proxy.NewEndpointsChangeTracker(cfg.IPFamily, cfg.NodeName, p.makeEndpoint, nil)
	if err := p.prepareKernel(); err != nil {
		return nil, err
	}
	p.syncRunner = runner.NewBoundedFrequencyRunner("ipvs-sync-"+string(cfg.IPFamily), p.syncProxyRules, cfg.MinSyncPeriod, retryInterval(cfg), cfg.SyncPeriod)
	logger.V(2).Info("IPVS proxier ready", "scheduler", cfg.scheduler(), "syncPeriod", cfg.SyncPeriod,
		"minSyncPeriod", cfg.MinSyncPeriod, "immediateTermination", cfg.ImmediateTermination)
	return p, nil
}

// retryInterval is how soon a failed sync is retried (as a full sync): soon,
// but not so often that a persistent kernel error keeps a large node busy.
func retryInterval(cfg Config) time.Duration {
	return min(max(cfg.MinSyncPeriod, 2*time.Second), cfg.SyncPeriod)
}

func parseFamilyCIDRs(cidrs []string, family v1.IPFamily) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR %q: %w", s, err)
		}
		if inFamily(pfx.Addr(), family) {
			out = append(out, pfx.Masked())
		}
	}
	return out, nil
}

// makeServicePort wraps newServicePort to report bad service ports once,
// when the Service changes.
func (p *Proxier) makeServicePort(port *v1.ServicePort, svc *v1.Service, base *proxy.BaseServicePortInfo) proxy.ServicePort {
	sp := newServicePort(port, svc, base)
	policy, invalid, _ := portSettings(sp)
	if invalid != "" {
		p.logger.Error(nil, "Skipping invalid service port", "service", klog.KObj(svc), "port", port.Name, "reason", invalid)
		p.event(svc, "InvalidServicePort", fmt.Sprintf("port %q skipped: %s", port.Name, invalid))
	}
	if v := svc.Annotations[TerminationPolicyAnnotation]; v != "" && policy == "" {
		p.logger.Error(nil, "Ignoring unknown termination policy", "service", klog.KObj(svc), "annotation", TerminationPolicyAnnotation, "value", v)
	}
	return sp
}

func (p *Proxier) makeEndpoint(info *proxy.BaseEndpointInfo, name *proxy.ServicePortName) proxy.Endpoint {
	if reason := endpointProblem(info); reason != "" {
		p.logger.Error(nil, "Skipping invalid endpoint", "service", name, "endpoint", info.String(), "reason", reason)
	}
	if e := p.knownEndpoint(name, info); e != nil {
		return e
	}
	return newEndpoint(info)
}

// knownEndpoint is the endpoint the proxier keeps already for the same
// port, address and state, or nil: the tracker rebuilds every endpoint of
// a changed Service (twice: as it was and as it is), most of them as they
// were. It runs within the sync (EndpointsMap.Update), which owns
// endpointsMap.
func (p *Proxier) knownEndpoint(name *proxy.ServicePortName, info proxy.Endpoint) proxy.Endpoint {
	eps, hostPort := p.endpointsMap[*name], info.String()
	i, found := slices.BinarySearchFunc(eps, hostPort, func(e proxy.Endpoint, s string) int { // sorted by String
		return strings.Compare(e.String(), s)
	})
	if !found {
		return nil
	}
	e, ok := eps[i].(*endpoint)
	if !ok || info.ZoneHints() != nil || info.NodeHints() != nil || // a hintedEndpoint is not reused
		e.flags != flagsOf(info) { // the same String: the same address and port
		return nil
	}
	return e
}

func (p *Proxier) event(svc *v1.Service, reason, note string) {
	if p.deps.Recorder != nil {
		p.deps.Recorder.Eventf(svc, nil, v1.EventTypeWarning, reason, "Sync", note)
	}
}

// Sync queues a sync as soon as minSyncPeriod allows.
func (p *Proxier) Sync() {
	if p.deps.HealthServer != nil {
		p.deps.HealthServer.QueuedUpdate(p.cfg.IPFamily)
	}
	proxymetrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(p.cfg.IPFamily)).SetToCurrentTime()
	p.requestSync()
}

// requestSync asks the loop for a sync as soon as minSyncPeriod allows; once
// the loop has ended the request is dropped.
func (p *Proxier) requestSync() {
	p.loopEnd.RLock()
	defer p.loopEnd.RUnlock()
	if !p.loopEnded {
		p.syncRunner.Run() // never blocks
	}
}

// runLoop runs the runner's loop until stop is closed. The runner closes
// its channel when its loop returns, and timers armed by earlier syncs may
// still fire: the end is marked first, so their requests are dropped.
func (p *Proxier) runLoop(stop <-chan struct{}) {
	inner := make(chan struct{})
	go func() {
		<-stop
		p.loopEnd.Lock()
		p.loopEnded = true
		p.loopEnd.Unlock()
		close(inner)
	}()
	p.syncRunner.Loop(inner)
}

// SyncLoop runs the periodic and queued syncs; it does not return.
func (p *Proxier) SyncLoop() {
	if p.deps.HealthServer != nil {
		p.deps.HealthServer.Updated(p.cfg.IPFamily)
	}
	proxymetrics.SyncProxyRulesLastQueuedTimestamp.WithLabelValues(string(p.cfg.IPFamily)).SetToCurrentTime()
	p.looping.Store(true)
	p.runLoop(make(chan struct{}))
}

// OnServiceAdd is part of proxy.Provider.
func (p *Proxier) OnServiceAdd(svc *v1.Service) { p.OnServiceUpdate(nil, svc) }

// OnServiceUpdate is part of proxy.Provider.
func (p *Proxier) OnServiceUpdate(old, svc *v1.Service) {
	if p.serviceChanges.Update(sanitizeService(old), sanitizeService(svc)) && p.initialized.Load() {
		p.Sync()
	}
}

// OnServiceDelete is part of proxy.Provider.
func (p *Proxier) OnServiceDelete(svc *v1.Service) { p.OnServiceUpdate(svc, nil) }

// OnServiceSynced is part of proxy.Provider.
func (p *Proxier) OnServiceSynced() {
	p.mu.Lock()
	p.servicesSynced = true
	p.initialized.Store(p.endpointSlicesSynced)
	p.mu.Unlock()
	_ = p.syncProxyRules()
}

// OnEndpointSliceAdd is part of proxy.Provider.
func (p *Proxier) OnEndpointSliceAdd(s *discovery.EndpointSlice) { p.endpointSliceChanged(s, false) }

// OnEndpointSliceUpdate is part of proxy.Provider.
func (p *Proxier) OnEndpointSliceUpdate(_, s *discovery.EndpointSlice) {
	p.endpointSliceChanged(s, false)
}

// OnEndpointSliceDelete is part of proxy.Provider.
func (p *Proxier) OnEndpointSliceDelete(s *discovery.EndpointSlice) { p.endpointSliceChanged(s, true) }

func (p *Proxier) endpointSliceChanged(s *discovery.EndpointSlice, removed bool) {
	p.endpointNodes.update(s, removed) // first: a sync that sees the change must find the nodes
	if p.endpointsChanges.EndpointSliceUpdate(sanitizeEndpointSlice(s), removed) && p.initialized.Load() {
		p.Sync()
	}
}

// OnEndpointSlicesSynced is part of proxy.Provider.
func (p *Proxier) OnEndpointSlicesSynced() {
	p.mu.Lock()
	p.endpointSlicesSynced = true
	p.initialized.Store(p.servicesSynced)
	p.mu.Unlock()
	_ = p.syncProxyRules()
}

// OnTopologyChange is part of proxy.Provider.
func (p *Proxier) OnTopologyChange(labels map[string]string) {
	p.mu.Lock()
	p.topologyLabels = labels
	p.needFull = true // every service's endpoint choice may change
	p.desiredStale = true
	p.mu.Unlock()
	p.logger.V(4).Info("Node topology labels changed", "labels", labels)
	p.Sync()
}

// OnServiceCIDRsChanged is part of proxy.Provider; IPVS mode needs nothing from it.
func (p *Proxier) OnServiceCIDRsChanged(_ []string) {}

// sanitizeService fills what upstream's tracker assumes the API server
// guarantees, so a malformed object cannot crash the proxier: ClientIP
// affinity without a timeout gets the API default (3 hours).
func sanitizeService(svc *v1.Service) *v1.Service {
	if svc == nil || svc.Spec.SessionAffinity != v1.ServiceAffinityClientIP {
		return svc
	}
	c := svc.Spec.SessionAffinityConfig
	if c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return svc
	}
	svc = svc.DeepCopy()
	timeout := int32(v1.DefaultClientIPServiceAffinitySeconds)
	svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout}}
	return svc
}

// sanitizeEndpointSlice gives ports without a protocol the API default
// (TCP): upstream's EndpointSliceCache dereferences it.
func sanitizeEndpointSlice(s *discovery.EndpointSlice) *discovery.EndpointSlice {
	if s == nil || !slices.ContainsFunc(s.Ports, func(p discovery.EndpointPort) bool { return p.Protocol == nil }) {
		return s
	}
	s = s.DeepCopy()
	for i := range s.Ports {
		if s.Ports[i].Protocol == nil {
			tcp := v1.ProtocolTCP
			s.Ports[i].Protocol = &tcp
		}
	}
	return s
}
