package app

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/kubernetes/pkg/proxy/apis"
	proxyconfig "k8s.io/kubernetes/pkg/proxy/config"
)

// multiCIDRServiceAllocator is upstream's gate for ServiceCIDR objects.
const multiCIDRServiceAllocator = "MultiCIDRServiceAllocator"

// startInformers watches what upstream kube-proxy watches and feeds the
// proxier: Services (not headless, not claimed by another proxy),
// EndpointSlices (not of headless Services), ServiceCIDRs and the own Node;
// with IPVSImmediateTermination also every Node's readiness (lost nodes).
// Informers retry a lost API server with backoff; the rules stay meanwhile.
func (s *proxyServer) startInformers(ctx context.Context) error {
	resync := s.cfg.ConfigSyncPeriod.Duration
	serviceSelector, err := notLabelled(apis.LabelServiceProxyName)
	if err != nil {
		return err
	}
	sliceSelector, err := notLabelled(v1.IsHeadlessService)
	if err != nil {
		return err
	}
	services := s.informerFactory(func(o *metav1.ListOptions) {
		o.LabelSelector = serviceSelector
		o.FieldSelector = fields.OneTermNotEqualSelector("spec.clusterIP", v1.ClusterIPNone).String()
	})
	slices := s.informerFactory(func(o *metav1.ListOptions) { o.LabelSelector = sliceSelector })
	unfiltered := s.informerFactory(nil)

	serviceConfig := proxyconfig.NewServiceConfig(ctx, services.Core().V1().Services(), resync)
	serviceConfig.RegisterEventHandler(s.proxier)
	go serviceConfig.Run(ctx.Done())

	sliceConfig := proxyconfig.NewEndpointSliceConfig(ctx, slices.Discovery().V1().EndpointSlices(), resync)
	sliceConfig.RegisterEventHandler(s.proxier)
	go sliceConfig.Run(ctx.Done())

	if s.gate.Enabled(multiCIDRServiceAllocator) {
		cidrConfig := proxyconfig.NewServiceCIDRConfig(ctx, unfiltered.Networking().V1().ServiceCIDRs(), resync)
		cidrConfig.RegisterEventHandler(s.proxier)
		go cidrConfig.Run(ctx.Done())
	}
	// Start after the configs above registered their handlers, so that the
	// initial listing reaches them.
	unfiltered.Start(ctx.Done())
	slices.Start(ctx.Done())
	services.Start(ctx.Done())

	s.watchOwnNode(ctx)
	if s.gate.Enabled(IPVSImmediateTermination) {
		s.watchNodeReadiness(ctx)
	}
	return nil
}

// watchOwnNode feeds node changes to the NodeManager (health, node IP
// changes) and topology labels to the proxier. It uses its own informer,
// started after the handlers are registered: adding them to the
// NodeManager's running informer races with its first event, which could
// leave the proxier without the node's zone.
func (s *proxyServer) watchOwnNode(ctx context.Context) {
	resync := s.cfg.ConfigSyncPeriod.Duration
	nodes := s.informerFactory(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.nodeName).String()
	})
	nodeConfig := proxyconfig.NewNodeConfig(ctx, nodes.Core().V1().Nodes(), resync)
	nodeConfig.RegisterEventHandler(s.nodeManager)
	topologyConfig := proxyconfig.NewNodeTopologyConfig(ctx, nodes.Core().V1().Nodes(), resync)
	topologyConfig.RegisterEventHandler(s.proxier)
	nodes.Start(ctx.Done())
	go nodeConfig.Run(ctx.Done())
}

// informerFactory makes a factory whose informers drop managedFields (never
// used, and large) and list with tweak.
func (s *proxyServer) informerFactory(tweak func(*metav1.ListOptions)) informers.SharedInformerFactory {
	opts := []informers.SharedInformerOption{informers.WithTransform(dropManagedFields)}
	if tweak != nil {
		opts = append(opts, informers.WithTweakListOptions(tweak))
	}
	return informers.NewSharedInformerFactoryWithOptions(s.client, s.cfg.ConfigSyncPeriod.Duration, opts...)
}

func dropManagedFields(obj interface{}) (interface{}, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

// notLabelled is a label selector matching objects without label.
func notLabelled(label string) (string, error) {
	req, err := labels.NewRequirement(label, selection.DoesNotExist, nil)
	if err != nil {
		return "", fmt.Errorf("label selector !%s: %w", label, err)
	}
	return labels.NewSelector().Add(*req).String(), nil
}
