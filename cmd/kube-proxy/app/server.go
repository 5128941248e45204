package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	v1 "k8s.io/api/core/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	"k8s.io/kubernetes/pkg/proxy/metaproxier"

	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// proxyServer is one running kube-proxy: its client, node, servers and the
// proxier (one per family, or both behind a metaproxier).
type proxyServer struct {
	cfg *v1alpha1.KubeProxyConfiguration
	// warnings about cfg, served in /configz.
	warnings []string
	env      *Environment
	gate     featuregate.MutableVersionedFeatureGate
	client   clientset.Interface

	nodeName      string
	nodeManager   *proxy.NodeManager
	primaryFamily v1.IPFamily
	nodeIPs       map[v1.IPFamily]net.IP
	podCIDRs      []string
	nodeRef       *v1.ObjectReference

	broadcaster  events.EventBroadcaster
	recorder     events.EventRecorder
	healthServer *healthcheck.ProxyHealthServer
	metrics      *ipvsproxy.Metrics
	proxier      proxy.Provider
	// readinessHandlers are the family proxiers that act on lost nodes (the
	// metaproxier does not forward OnNodesNotReady).
	readinessHandlers []ipvsproxy.NodeReadinessHandler
}

// runServer starts kube-proxy and blocks until ctx is cancelled (SIGTERM),
// which returns nil and leaves the dataplane in place, or until the config
// file changes or a server cannot bind with bindAddressHardFail.
func runServer(ctx context.Context, cfg *v1alpha1.KubeProxyConfiguration, warnings []string, master string, env *Environment, gate featuregate.MutableVersionedFeatureGate, configChanged <-chan error) error {
	s, err := newProxyServer(ctx, cfg, master, env, gate)
	if err != nil {
		if ctx.Err() != nil {
			klog.FromContext(ctx).Info("Stopped before the proxier started", "reason", err)
			return nil
		}
		return err
	}
	s.warnings = warnings
	return s.run(ctx, configChanged)
}

// newProxyServer connects, waits for the own Node (the API server may be
// down: client-go retries with backoff) and creates the proxier.
func newProxyServer(ctx context.Context, cfg *v1alpha1.KubeProxyConfiguration, master string, env *Environment, gate featuregate.MutableVersionedFeatureGate) (*proxyServer, error) {
	logger := klog.FromContext(ctx)
	// First, like upstream: the line to look for when debugging a node.
	logger.Info("Version info", "version", version.Get())
	s := &proxyServer{cfg: cfg, env: env, gate: gate}
	if cfg.ShowHiddenMetricsForVersion != "" {
		metrics.SetShowHidden()
	}
	var err error
	if s.nodeName, err = nodeName(cfg.HostnameOverride, env.Hostname); err != nil {
		return nil, err
	}
	if s.client, err = env.NewClient(cfg.ClientConnection, master); err != nil {
		return nil, err
	}
	s.nodeManager, err = proxy.NewNodeManager(ctx, s.client, s.nodeName, &kubeproxyconfig.KubeProxyConfiguration{
		ConfigSyncPeriod: cfg.ConfigSyncPeriod,
		DetectLocalMode:  kubeproxyconfig.LocalMode(cfg.DetectLocalMode),
	})
	if err != nil {
		return nil, fmt.Errorf("watch node %q: %w", s.nodeName, err)
	}
	s.primaryFamily, s.nodeIPs = detectNodeIPs(logger, s.nodeManager.NodeIPs(), cfg.BindAddress)
	s.podCIDRs = s.nodeManager.PodCIDRs()
	s.nodeRef = &v1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.nodeName}
	s.broadcaster = events.NewBroadcaster(&events.EventSinkImpl{Interface: s.client.EventsV1()})
	s.recorder = s.broadcaster.NewRecorder(scheme.Scheme, "kube-proxy")
	if cfg.HealthzBindAddress != "" {
		s.healthServer = healthcheck.NewProxyHealthServer(cfg.HealthzBindAddress, 2*cfg.IPVS.SyncPeriod.Duration, s.nodeManager)
	}
	if err := env.SetConntrackSysctls(ctx, &cfg.Conntrack); err != nil {
		return nil, fmt.Errorf("could not set conntrack parameters from kube-proxy configuration: %w", err)
	}
	if err := s.createProxier(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// nodeName is --hostname-override (hostnameOverride) or the host name,
// lowercased like upstream.
func nodeName(override string, hostname func() (string, error)) (string, error) {
	name := override
	if name == "" {
		h, err := hostname()
		if err != nil {
			return "", fmt.Errorf("get host name: %w", err)
		}
		name = h
	}
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return "", errors.New("empty node name: set hostnameOverride or --hostname-override")
	}
	return name, nil
}

// createProxier makes one proxier per IP family the host supports, joined
// by a metaproxier when both are.
func (s *proxyServer) createProxier(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	ipv4, ipv6 := s.env.SupportedFamilies(logger)
	if (s.primaryFamily == v1.IPv4Protocol && !ipv4) || (s.primaryFamily == v1.IPv6Protocol && !ipv6) {
		return fmt.Errorf("no support for primary IP family %q", s.primaryFamily)
	}
	dualStack := ipv4 && ipv6
	if err := checkFamilyConfig(logger, s.cfg, s.primaryFamily, dualStack, s.podCIDRs); err != nil {
		return fmt.Errorf("kube-proxy configuration is incorrect: %w", err)
	}
	s.metrics = ipvsproxy.NewMetrics()
	s.env.RegisterMetrics(s.metrics, s.gate)
	families := []v1.IPFamily{s.primaryFamily}
	if dualStack {
		families = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	}
	logger.Info("Using ipvs Proxier", "ipFamilies", families, "immediateTermination", s.gate.Enabled(IPVSImmediateTermination))
	proxiers := map[v1.IPFamily]proxy.Provider{}
	for _, family := range families {
		p, err := s.newFamilyProxier(ctx, family)
		if err != nil {
			return fmt.Errorf("unable to create %s proxier: %w", family, err)
		}
		proxiers[family] = p
		if h, ok := p.(ipvsproxy.NodeReadinessHandler); ok {
			s.readinessHandlers = append(s.readinessHandlers, h)
		}
	}
	s.proxier = proxiers[s.primaryFamily]
	if dualStack {
		s.proxier = metaproxier.NewMetaProxier(proxiers[v1.IPv4Protocol], proxiers[v1.IPv6Protocol])
	}
	return nil
}

func (s *proxyServer) newFamilyProxier(ctx context.Context, family v1.IPFamily) (proxy.Provider, error) {
	deps, err := s.env.KernelDeps(family)
	if err != nil {
		return nil, err
	}
	cfg, err := proxierConfig(s.cfg, family, s.nodeName, s.nodeIPs, s.podCIDRs, s.gate)
	if err != nil {
		return nil, err
	}
	deps.Recorder = s.recorder
	deps.HealthServer = s.healthServer
	deps.Metrics = s.metrics
	deps.ServiceHealthServer = newServiceHealthServer(s.nodeName, s.recorder, cfg.NodePortAddresses, s.healthServer, family)
	return s.env.NewProxier(ctx, cfg, deps)
}

// run starts the servers, the informers and the sync loop, then waits.
func (s *proxyServer) run(ctx context.Context, configChanged <-chan error) error {
	logger := klog.FromContext(ctx)
	if err := s.env.SetOOMScoreAdj(*s.cfg.OOMScoreAdj); err != nil {
		logger.V(2).Info("Failed to apply OOMScore", "err", err)
	}
	s.broadcaster.StartRecordingToSink(ctx.Done())
	defer s.broadcaster.Shutdown()

	var hardFail chan serverFailure
	if s.cfg.BindAddressHardFail {
		hardFail = make(chan serverFailure, 2)
	}
	serveHealthz(ctx, s.healthServer, hardFail)
	serveMetrics(ctx, s.cfg.MetricsBindAddress, newMetricsMux(s.cfg, s.warnings, s.env.MetricsHandler), hardFail)
	if err := s.startInformers(ctx); err != nil {
		return err
	}
	s.recorder.Eventf(s.nodeRef, nil, v1.EventTypeNormal, "Starting", "StartKubeProxy", "")
	go s.proxier.SyncLoop()

	select {
	case <-ctx.Done():
		logger.Info("Stopping kube-proxy; IPVS rules stay in place")
		return nil
	case err := <-configChanged:
		return err
	case failure := <-hardFail:
		s.recorder.Eventf(s.nodeRef, nil, v1.EventTypeWarning, failure.reason, "StartKubeProxy", failure.err.Error())
		return failure.err
	}
}
