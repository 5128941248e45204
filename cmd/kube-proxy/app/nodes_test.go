package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// honourNodeNameSelector makes the fake API server list and watch Nodes by
// metadata.name as the real one does (the fake ignores field selectors):
// the own-Node watch must not see the other Nodes.
func honourNodeNameSelector(client *fake.Clientset) {
	gvr, gvk := v1.SchemeGroupVersion.WithResource("nodes"), v1.SchemeGroupVersion.WithKind("Node")
	client.PrependReactor("list", "nodes", func(action k8stesting.Action) (bool, apiruntime.Object, error) {
		name, ok := action.(k8stesting.ListAction).GetListRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return false, nil, nil
		}
		obj, err := client.Tracker().List(gvr, gvk, "")
		if err != nil {
			return true, nil, err
		}
		list := obj.(*v1.NodeList)
		list.Items = slices.DeleteFunc(list.Items, func(n v1.Node) bool { return n.Name != name })
		return true, list, nil
	})
	client.PrependWatchReactor("nodes", func(action k8stesting.Action) (bool, watch.Interface, error) {
		name, ok := action.(k8stesting.WatchAction).GetWatchRestrictions().Fields.RequiresExactMatch("metadata.name")
		if !ok {
			return false, nil, nil
		}
		w, err := client.Tracker().Watch(gvr, "")
		if err != nil {
			return true, nil, err
		}
		return true, watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
			n, ok := e.Object.(*v1.Node)
			return e, ok && n.Name == name
		}), nil
	})
}

// withReady sets the Ready condition of node (status "" removes it).
func withReady(node *v1.Node, status v1.ConditionStatus) *v1.Node {
	node = node.DeepCopy()
	node.Status.Conditions = nil
	if status != "" {
		node.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: status}}
	}
	return node
}

func bareNode(name string) *v1.Node { return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }

// readyTestObjects are testObjects with the own node Ready.
func readyTestObjects() []any {
	objects := testObjects()
	objects[0] = withReady(objects[0].(*v1.Node), v1.ConditionTrue)
	return objects
}

func (h *testHost) notReadyHistory(family v1.IPFamily) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.notReadySeen[family]...)
}

// TestNodeReadinessReachesEveryFamilyProxier: with the gate on, both family
// proxiers of a dual-stack host get the whole set of not-Ready nodes once
// the Nodes are listed and again on every change of that set, and nothing
// when a Node changes without changing it.
func TestNodeReadinessReachesEveryFamilyProxier(t *testing.T) {
	host := newTestHost(t)
	host.ipv6 = true
	host.client = newFakeClient(append(readyTestObjects(), withReady(bareNode("node-b"), v1.ConditionTrue)))
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, kubeadmLikeConfig(freePort(t), freePort(t)))
	stop, _ := startCommand(t, host.env(), args)
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })

	nodes := host.client.CoreV1().Nodes()
	ctx := context.Background()
	create := func(node *v1.Node) error {
		_, err := nodes.Create(ctx, node, metav1.CreateOptions{})
		return err
	}
	steps := []struct {
		what   string
		change func() error
		want   string
	}{
		{"listed", func() error { return nil }, ""},
		{"node-b Unknown", func() error { return updateStatus(nodes, withReady(bareNode("node-b"), v1.ConditionUnknown)) }, "node-b"},
		{"node-c without Ready", func() error { return create(bareNode("node-c")) }, "node-b,node-c"},
		{"node-b Ready again", func() error { return updateStatus(nodes, withReady(bareNode("node-b"), v1.ConditionTrue)) }, "node-c"},
		{"node-b relabelled (no change)", func() error { return relabel(nodes, "node-b") }, "node-c"},
		{"node-c deleted", func() error { return nodes.Delete(ctx, "node-c", metav1.DeleteOptions{}) }, ""},
		{"node-d False", func() error { return create(withReady(bareNode("node-d"), v1.ConditionFalse)) }, "node-d"},
	}
	var want []string
	for _, step := range steps {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if len(want) == 0 || want[len(want)-1] != step.want {
			want = append(want, step.want)
		}
		for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			waitFor(t, fmt.Sprintf("%s: %s proxier told %q", step.what, family, step.want), func() bool {
				return reflect.DeepEqual(host.notReadyHistory(family), want)
			})
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func updateStatus(nodes interface {
	UpdateStatus(context.Context, *v1.Node, metav1.UpdateOptions) (*v1.Node, error)
}, node *v1.Node) error {
	_, err := nodes.UpdateStatus(context.Background(), node, metav1.UpdateOptions{})
	return err
}

func relabel(nodes interface {
	Get(context.Context, string, metav1.GetOptions) (*v1.Node, error)
	Update(context.Context, *v1.Node, metav1.UpdateOptions) (*v1.Node, error)
}, name string) error {
	node, err := nodes.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	node.Labels = map[string]string{"relabelled": time.Now().Format("150405")}
	_, err = nodes.Update(context.Background(), node, metav1.UpdateOptions{})
	return err
}

// TestNodeWatchOnlyWithTheGate: gate off costs what upstream costs (the own
// Node only, by field selector); gate on adds one watch of every Node.
func TestNodeWatchOnlyWithTheGate(t *testing.T) {
	for _, gate := range []bool{false, true} {
		t.Run(fmt.Sprintf("gate %v", gate), func(t *testing.T) {
			host := newTestHost(t)
			client := newFakeClient(readyTestObjects()).(*fake.Clientset)
			host.client = client
			config := strings.Replace(kubeadmLikeConfig(freePort(t), freePort(t)), "IPVSImmediateTermination: true", fmt.Sprintf("IPVSImmediateTermination: %v", gate), 1)
			stop, _ := startCommand(t, host.env(), withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, config))
			waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
			if gate {
				waitFor(t, "every Node watched", func() bool { return len(allNodeWatches(client)) > 0 })
			} else {
				time.Sleep(200 * time.Millisecond) // time for a watch that should not start
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := allNodeWatches(client); (len(got) > 0) != gate {
				t.Errorf("gate %v: list/watch of every Node: %v", gate, got)
			}
			if !gate && len(host.notReadyHistory(v1.IPv4Protocol)) != 0 {
				t.Errorf("gate off: proxier told of not-Ready nodes: %v", host.notReadyHistory(v1.IPv4Protocol))
			}
		})
	}
}

// allNodeWatches are the list and watch calls on Nodes not restricted to the
// own Node by a field selector.
func allNodeWatches(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		if a.GetResource() != v1.SchemeGroupVersion.WithResource("nodes") {
			continue
		}
		var fields string
		switch a := a.(type) {
		case k8stesting.ListAction:
			fields = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			fields = a.GetWatchRestrictions().Fields.String()
		default:
			continue
		}
		if fields != "metadata.name=worker-1" {
			out = append(out, a.GetVerb()+" fields="+fields)
		}
	}
	return out
}

// TestSlowNodeListDoesNotDelayStart: when listing every Node fails (an API
// server too slow for it), the proxier starts and syncs all the same and
// is told of no lost node: it drains like upstream.
func TestSlowNodeListDoesNotDelayStart(t *testing.T) {
	host := newTestHost(t)
	client := newFakeClient(append(readyTestObjects(), withReady(bareNode("node-b"), v1.ConditionUnknown))).(*fake.Clientset)
	client.PrependReactor("list", "nodes", func(action k8stesting.Action) (bool, apiruntime.Object, error) {
		if action.(k8stesting.ListAction).GetListRestrictions().Fields.Empty() {
			return true, nil, errors.New("the server was unable to return a response in the time allotted")
		}
		return false, nil, nil
	})
	host.client = client
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, kubeadmLikeConfig(freePort(t), freePort(t)))
	stop, _ := startCommand(t, host.env(), args)
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
	waitFor(t, "a list of every Node tried", func() bool { return len(allNodeWatches(client)) > 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := host.notReadyHistory(v1.IPv4Protocol); len(got) != 0 {
		t.Errorf("proxier told %v before the Nodes were listed", got)
	}
}

// TestNodeReadinessView: the informer keeps a Node's name, UID, resource
// version and Ready condition (type, status, reason) only.
func TestNodeReadinessView(t *testing.T) {
	full := realisticNode("worker-17", v1.ConditionUnknown)
	got, err := nodeReadinessView(full)
	if err != nil {
		t.Fatal(err)
	}
	want := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-17", UID: full.UID, ResourceVersion: full.ResourceVersion},
		Status:     v1.NodeStatus{Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionUnknown, Reason: "NodeStatusUnknown"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("view:\n%s\nwant:\n%s", mustJSON(t, got), mustJSON(t, want))
	}
	if got, _ := nodeReadinessView(bareNode("no-conditions")); len(got.(*v1.Node).Status.Conditions) != 0 || !nodeNotReady(got.(*v1.Node)) {
		t.Errorf("node without conditions: view %+v, must count as not Ready", got)
	}
	tombstone := cache.DeletedFinalStateUnknown{Key: "worker-17", Obj: full}
	if got, _ := nodeReadinessView(tombstone); !reflect.DeepEqual(got, tombstone) {
		t.Errorf("tombstone changed: %+v", got)
	}
}

// TestNodeReadinessViewSize measures (go test -v -run ViewSize) a realistic
// Node serialized before and after the transform, and the heap the
// informer's cache keeps per Node either way: the figures of docs/design.md.
func TestNodeReadinessViewSize(t *testing.T) {
	full := realisticNode("worker-17", v1.ConditionTrue)
	view, _ := nodeReadinessView(full)
	fullJSON, viewJSON := len(mustJSON(t, full)), len(mustJSON(t, view))
	fullProto, viewProto := full.Size(), view.(*v1.Node).Size()
	t.Logf("serialized Node: JSON %d -> %d bytes, protobuf %d -> %d bytes (managedFields %d bytes of JSON, images %d)",
		fullJSON, viewJSON, fullProto, viewProto, len(mustJSON(t, full.ManagedFields)), len(mustJSON(t, full.Status.Images)))
	if viewProto*10 > fullProto {
		t.Errorf("view %d bytes of protobuf, more than a tenth of the full Node's %d", viewProto, fullProto)
	}
	t.Logf("protobuf decode of the full Node: %s", decodeTime(t, full))
	const n = 1000
	fullHeap := heapPerNode(t, n, func(i int) any { return realisticNode(fmt.Sprintf("worker-%d", i), v1.ConditionTrue) })
	viewHeap := heapPerNode(t, n, func(i int) any {
		v, _ := nodeReadinessView(realisticNode(fmt.Sprintf("worker-%d", i), v1.ConditionTrue))
		return v
	})
	t.Logf("informer cache heap per Node: full %d bytes, view %d bytes (5k nodes: %.1f MiB vs %.1f MiB)",
		fullHeap, viewHeap, float64(5000*fullHeap)/(1<<20), float64(5000*viewHeap)/(1<<20))
}

// decodeTime is how long decoding node from protobuf takes (what every watch
// event costs the client before the transform).
func decodeTime(t *testing.T, node *v1.Node) time.Duration {
	t.Helper()
	data, err := node.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	result := testing.Benchmark(func(b *testing.B) {
		for range b.N {
			var decoded v1.Node
			if err := decoded.Unmarshal(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	return time.Duration(result.NsPerOp())
}

// heapPerNode is the live heap an informer store keeps per object made by make.
func heapPerNode(t *testing.T, n int, make func(int) any) int {
	t.Helper()
	before := liveHeap()
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for i := range n {
		if err := store.Add(make(i)); err != nil {
			t.Fatal(err)
		}
	}
	after := liveHeap()
	runtime.KeepAlive(store)
	return int(after-before) / n
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mustJSON(t *testing.T, obj any) []byte {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realisticNode is a Node as a kubelet on a cloud VM keeps it: kubelet's
// labels and annotations, five conditions, addresses, capacity, node info,
// 50 images (nodeStatusMaxImages), attached volumes and the managedFields of
// kubelet, kube-controller-manager and kubeadm.
func realisticNode(name string, ready v1.ConditionStatus) *v1.Node {
	now := metav1.NewTime(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID("5b1c9e4e-8a63-4f0e-9d6f-" + fmt.Sprintf("%012d", len(name))), ResourceVersion: "81234567",
			CreationTimestamp: now,
			Labels: map[string]string{
				"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"kubernetes.io/os": "linux", "kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "n2-standard-8",
				"beta.kubernetes.io/instance-type": "n2-standard-8", "topology.kubernetes.io/region": "europe-west4",
				"topology.kubernetes.io/zone": "europe-west4-b", "failure-domain.beta.kubernetes.io/region": "europe-west4",
				"failure-domain.beta.kubernetes.io/zone": "europe-west4-b", "cloud.google.com/machine-family": "n2",
				"node-pool": "general-purpose", "topology.gke.io/zone": "europe-west4-b",
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
				"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
				"csi.volume.kubernetes.io/nodeid":        fmt.Sprintf(`{"pd.csi.storage.gke.io":"projects/prod-cluster/zones/europe-west4-b/instances/%s"}`, name),
			},
			ManagedFields: realisticManagedFields(now),
		},
		Spec: v1.NodeSpec{
			PodCIDR: "10.244.17.0/24", PodCIDRs: []string{"10.244.17.0/24"},
			ProviderID: "gce://prod-cluster/europe-west4-b/" + name,
		},
		Status: v1.NodeStatus{
			Capacity:    realisticResources("8", "32879876Ki"),
			Allocatable: realisticResources("7910m", "29094660Ki"),
			Conditions:  realisticConditions(now, ready),
			Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "10.164.0.117"},
				{Type: v1.NodeExternalIP, Address: "34.91.12.117"}, {Type: v1.NodeHostName, Address: name}},
			DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: 10250}},
			NodeInfo: v1.NodeSystemInfo{
				MachineID: "3f1e2d6c8b7a49e0a1b2c3d4e5f60718", SystemUUID: "3f1e2d6c-8b7a-49e0-a1b2-c3d4e5f60718",
				BootID: "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a", KernelVersion: "6.1.0-57-amd64",
				OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.7.24",
				KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			},
			Images: realisticImages(50),
		},
	}
	for i := range 3 {
		pv := v1.UniqueVolumeName(fmt.Sprintf("kubernetes.io/csi/pd.csi.storage.gke.io^projects/prod-cluster/zones/europe-west4-b/disks/pvc-%08d-1c2d-4e5f-8a9b-0c1d2e3f4a5b", i))
		node.Status.VolumesInUse = append(node.Status.VolumesInUse, pv)
		node.Status.VolumesAttached = append(node.Status.VolumesAttached, v1.AttachedVolume{Name: pv, DevicePath: ""})
	}
	return node
}

func realisticResources(cpu, memory string) v1.ResourceList {
	return v1.ResourceList{
		v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(memory),
		v1.ResourcePods: resource.MustParse("110"), v1.ResourceEphemeralStorage: resource.MustParse("98831908Ki"),
		"hugepages-1Gi": resource.MustParse("0"), "hugepages-2Mi": resource.MustParse("0"),
		"attachable-volumes-gce-pd": resource.MustParse("127"),
	}
}

func realisticConditions(now metav1.Time, ready v1.ConditionStatus) []v1.NodeCondition {
	condition := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, message string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, LastHeartbeatTime: now, LastTransitionTime: now, Reason: reason, Message: message}
	}
	readyReason, readyMessage := "KubeletReady", "kubelet is posting ready status"
	if ready == v1.ConditionUnknown {
		readyReason, readyMessage = "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	return []v1.NodeCondition{
		condition(v1.NodeNetworkUnavailable, v1.ConditionFalse, "RouteCreated", "RouteController created a route"),
		condition(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		condition(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		condition(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		condition(v1.NodeReady, ready, readyReason, readyMessage),
	}
}

// realisticImages are n images named by digest and by tag, as kubelet lists them.
func realisticImages(n int) []v1.ContainerImage {
	images := make([]v1.ContainerImage, 0, n)
	for i := range n {
		repo := fmt.Sprintf("europe-docker.pkg.dev/prod-cluster/services/team-%02d/service-%02d", i%7, i)
		digest := fmt.Sprintf("%064x", uint64(i+1)*0x9e3779b97f4a7c15)[:64]
		images = append(images, v1.ContainerImage{
			Names:     []string{repo + "@sha256:" + digest, repo + fmt.Sprintf(":v1.%d.%d", i, i*3)},
			SizeBytes: int64(50_000_000 + i*1_234_567),
		})
	}
	return images
}

// realisticManagedFields are the field sets kubelet (status), kubelet
// (metadata at registration), kube-controller-manager and kubeadm record.
func realisticManagedFields(now metav1.Time) []metav1.ManagedFieldsEntry {
	conditions := ""
	for _, c := range []string{"DiskPressure", "MemoryPressure", "NetworkUnavailable", "PIDPressure", "Ready"} {
		conditions += fmt.Sprintf(`"k:{\"type\":\"%s\"}":{".":{},"f:lastHeartbeatTime":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},`, c)
	}
	status := `{"f:status":{"f:addresses":{".":{},"k:{\"type\":\"ExternalIP\"}":{".":{},"f:address":{},"f:type":{}},"k:{\"type\":\"Hostname\"}":{".":{},"f:address":{},"f:type":{}},"k:{\"type\":\"InternalIP\"}":{".":{},"f:address":{},"f:type":{}}},` +
		`"f:allocatable":{"f:attachable-volumes-gce-pd":{},"f:cpu":{},"f:ephemeral-storage":{},"f:memory":{}},"f:capacity":{"f:attachable-volumes-gce-pd":{},"f:cpu":{},"f:ephemeral-storage":{},"f:memory":{}},` +
		`"f:conditions":{` + strings.TrimSuffix(conditions, ",") + `},"f:daemonEndpoints":{"f:kubeletEndpoint":{"f:Port":{}}},"f:images":{},"f:nodeInfo":{"f:bootID":{},"f:containerRuntimeVersion":{},"f:kernelVersion":{},"f:kubeletVersion":{},"f:machineID":{},"f:osImage":{},"f:systemUUID":{}},"f:volumesInUse":{}}}`
	meta := `{"f:metadata":{"f:annotations":{".":{},"f:node.alpha.kubernetes.io/ttl":{},"f:volumes.kubernetes.io/controller-managed-attach-detach":{},"f:csi.volume.kubernetes.io/nodeid":{}},"f:labels":{".":{},"f:beta.kubernetes.io/arch":{},"f:beta.kubernetes.io/instance-type":{},"f:beta.kubernetes.io/os":{},"f:failure-domain.beta.kubernetes.io/region":{},"f:failure-domain.beta.kubernetes.io/zone":{},"f:kubernetes.io/arch":{},"f:kubernetes.io/hostname":{},"f:kubernetes.io/os":{},"f:node.kubernetes.io/instance-type":{},"f:topology.kubernetes.io/region":{},"f:topology.kubernetes.io/zone":{}}},"f:spec":{"f:providerID":{}}}`
	kcm := `{"f:metadata":{"f:annotations":{"f:node.alpha.kubernetes.io/ttl":{}}},"f:spec":{"f:podCIDR":{},"f:podCIDRs":{".":{},"v:\"10.244.17.0/24\"":{}}},"f:status":{"f:volumesAttached":{}}}`
	kubeadm := `{"f:metadata":{"f:annotations":{"f:kubeadm.alpha.kubernetes.io/cri-socket":{}}}}`
	entry := func(manager, sub, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
			Time: &now, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields), Subresource: sub}
	}
	return []metav1.ManagedFieldsEntry{
		entry("kubelet", "", meta), entry("kube-controller-manager", "", kcm), entry("kubeadm", "", kubeadm),
		entry("kube-controller-manager", "status", `{"f:status":{"f:volumesAttached":{}}}`), entry("kubelet", "status", status),
	}
}

// TestLostNodeRuleThroughTheCommand: the whole command on the fakes, gate
// on: an endpoint that turns not ready (not serving, not terminating) on a
// Node marked Unknown loses its real server at once although connections
// are established to it; the same endpoint state on a Ready Node (a
// readiness flap) parks it at weight 0 with its connections.
func TestLostNodeRuleThroughTheCommand(t *testing.T) {
	host := newTestHost(t)
	host.client = newFakeClient(append(readyTestObjects(), withReady(bareNode("node-b"), v1.ConditionTrue),
		withReady(bareNode("node-c"), v1.ConditionTrue), twoNodeSlice(true)))
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, kubeadmLikeConfig(freePort(t), freePort(t)))
	stop, _ := startCommand(t, host.env(), args)
	waitFor(t, "both endpoints in IPVS", func() bool {
		return strings.Contains(host.ipvs.Dump(), "10.244.2.7:8080") && strings.Contains(host.ipvs.Dump(), "10.244.3.9:8080")
	})
	vs := ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}
	for _, ip := range []string{"10.244.2.7", "10.244.3.9"} {
		if err := host.ipvs.SetConnections(vs, ipvs.DestinationKey{Address: netip.MustParseAddr(ip), Port: 8080}, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := updateStatus(host.client.CoreV1().Nodes(), withReady(bareNode("node-b"), v1.ConditionUnknown)); err != nil {
		t.Fatal(err)
	}
	if _, err := host.client.DiscoveryV1().EndpointSlices("ns").Update(context.Background(), twoNodeSlice(false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lost node's real server deleted", func() bool { return !strings.Contains(host.ipvs.Dump(), "10.244.2.7:8080") })
	if dump := host.ipvs.Dump(); !strings.Contains(dump, "10.244.3.9:8080 weight=0 active=1") {
		t.Errorf("the flapped endpoint on a Ready node must drain at weight 0:\n%s", dump)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// twoNodeSlice is a second slice of Service web: one endpoint on node-b, one
// on node-c, both ready or both not ready (not serving, not terminating).
func twoNodeSlice(ready bool) *discovery.EndpointSlice {
	endpoint := func(ip, node string) discovery.Endpoint {
		return discovery.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node),
			Conditions: discovery.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)}}
	}
	return &discovery.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-2", Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{endpoint("10.244.2.7", "node-b"), endpoint("10.244.3.9", "node-c")},
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}
}
