package podkit

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

// CleanProxyNode leaves node without kube-proxy's state and restarts kube-proxy there from
// nothing, so that what it then writes is its own work alone: the node loses the labels
// of the kube-proxy DaemonSet's nodeSelector (kubeadm's kubernetes.io/os), the DaemonSet
// controller removes the pod there, a pod of the DaemonSet's image runs `kube-proxy
// --cleanup` on the node (IPVS flushed, the dummy device, the rules and ipsets of
// kube-proxy's modes gone), and the labels come back, so the controller starts a new
// pod. It returns once that pod is Ready. The labels are put back at the test's end too,
// should it stop half-way.
func CleanProxyNode(t testing.TB, client kubernetes.Interface, ns, node string) {
	t.Helper()
	ctx := context.Background()
	ds, err := client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get daemonset kube-system/kube-proxy: %v", err)
	}
	selector := ds.Spec.Template.Spec.NodeSelector
	if len(selector) == 0 {
		t.Fatalf("daemonset kube-system/kube-proxy has no nodeSelector to take node %s out of it", node)
	}
	drop := map[string]any{}
	for k := range selector {
		drop[k] = nil
	}
	restore := map[string]any{}
	for k, v := range selector {
		restore[k] = v
	}
	if err := patchLabels(client, node, drop); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := patchLabels(client, node, restore); err != nil {
			t.Error(err)
		}
	})
	kubeclient.Eventually(t, PodTimeout, "no kube-proxy pod on "+node, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
			LabelSelector: "k8s-app=kube-proxy", FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, err
		}
		return len(pods.Items) == 0, nil
	})
	out := RunToCompletion(t, client, ns, cleanupPod(ds.Spec.Template.Spec, node))
	t.Logf("kube-proxy --cleanup on %s:\n%s", node, out["cleanup"])
	if err := patchLabels(client, node, restore); err != nil {
		t.Fatal(err)
	}
	kubeclient.Eventually(t, PodTimeout, "a new kube-proxy pod on "+node+" ready", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
			LabelSelector: "k8s-app=kube-proxy", FieldSelector: "spec.nodeName=" + node})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		for _, c := range pods.Items[0].Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// cleanupPod is a pod on node running the DaemonSet's image (and its host mounts) as
// `kube-proxy --cleanup`.
func cleanupPod(spec corev1.PodSpec, node string) *corev1.Pod {
	proxy := spec.Containers[0]
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy-cleanup-" + node},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever, HostNetwork: true,
			AutomountServiceAccountToken: ptr.To(false),
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name: "cleanup", Image: proxy.Image, ImagePullPolicy: corev1.PullNever,
				Command:         []string{proxy.Command[0], "--cleanup"},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}},
		},
	}
	// The host paths only (/lib/modules, the xtables lock): the ConfigMap and the
	// ServiceAccount token are kube-system's, and --cleanup needs neither.
	hostPath := map[string]bool{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			pod.Spec.Volumes = append(pod.Spec.Volumes, v)
			hostPath[v.Name] = true
		}
	}
	for _, m := range proxy.VolumeMounts {
		if hostPath[m.Name] {
			pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, m)
		}
	}
	return pod
}

// patchLabels sets (a value) or removes (nil) labels of node.
func patchLabels(client kubernetes.Interface, node string, labels map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return fmt.Errorf("encode label patch: %w", err)
	}
	if _, err := client.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch labels %v of node %s: %w", labels, node, err)
	}
	return nil
}
