package app

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
)

// watchNodeReadiness (gate on only) watches every Node and tells each
// family proxier which nodes are not Ready: the input of the lost-node
// rule. It never delays the start: until the first listing is complete the
// proxiers know of no lost node, so they drain like upstream.
func (s *proxyServer) watchNodeReadiness(ctx context.Context) {
	logger := klog.FromContext(ctx)
	readiness := &nodeReadiness{logger: logger, handlers: s.readinessHandlers, notReady: sets.New[string]()}
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, s.cfg.ConfigSyncPeriod.Duration,
		informers.WithTransform(nodeReadinessView))
	informer := factory.Core().V1().Nodes().Informer()
	registration, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    readiness.onNode,
		UpdateFunc: func(_, obj any) { readiness.onNode(obj) },
		DeleteFunc: readiness.onDelete,
	})
	if err != nil {
		logger.Error(err, "Cannot watch Nodes: the lost-node rule stays off")
		return
	}
	factory.Start(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), registration.HasSynced) {
			readiness.listed()
		}
	}()
}

// nodeReadinessView is the informer's transform: it keeps a Node's name and
// Ready condition and drops the rest (images, addresses, labels,
// managedFields...), so the cache of every Node stays small.
func nodeReadinessView(obj any) (any, error) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return obj, nil // a tombstone: its key is all that is used
	}
	view := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion}}
	if ready := readyCondition(node); ready != nil {
		view.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: ready.Status, Reason: ready.Reason}}
	}
	return view, nil
}

func readyCondition(node *v1.Node) *v1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == v1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// nodeNotReady: the Ready condition is False, Unknown (the node-lifecycle
// controller's mark of a node that stopped reporting) or missing.
func nodeNotReady(node *v1.Node) bool {
	ready := readyCondition(node)
	return ready == nil || ready.Status != v1.ConditionTrue
}

// nodeReadiness keeps the names of the not-Ready nodes and gives the whole
// set to the handlers on every change once the first listing is complete.
type nodeReadiness struct {
	logger   klog.Logger
	handlers []ipvsproxy.NodeReadinessHandler

	mu       sync.Mutex // also orders the calls to the handlers
	notReady sets.Set[string]
	synced   bool
}

func (r *nodeReadiness) onNode(obj any) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	notReady := nodeNotReady(node)
	if notReady == r.notReady.Has(node.Name) {
		return
	}
	if notReady {
		r.notReady.Insert(node.Name)
	} else {
		r.notReady.Delete(node.Name)
	}
	r.logger.V(2).Info("Node readiness changed", "node", node.Name, "ready", !notReady)
	r.publishLocked()
}

func (r *nodeReadiness) onDelete(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.notReady.Has(node.Name) {
		return
	}
	r.notReady.Delete(node.Name)
	r.publishLocked()
}

// listed is called once the first listing is in the set.
func (r *nodeReadiness) listed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = true
	r.logger.Info("Watching Nodes for the lost-node rule", "notReady", r.notReady.Len())
	r.publishLocked()
}

// publishLocked gives the set to every handler; not before the first
// listing is complete, so a start at 5k nodes publishes once.
func (r *nodeReadiness) publishLocked() {
	if !r.synced {
		return
	}
	names := r.notReady.Clone()
	for _, h := range r.handlers {
		h.OnNodesNotReady(names)
	}
}
