package podkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

// Addon runs hack/cluster/addon.sh ($CLUSTER_ADDON_SH) with args, its output in the
// test's log, and waits for the kube-proxy DaemonSet to roll out.
func Addon(t testing.TB, client kubernetes.Interface, args ...string) {
	t.Helper()
	script := kubeclient.Env(t, "CLUSTER_ADDON_SH")
	out, err := exec.Command(script, args...).CombinedOutput()
	t.Logf("%s %s:\n%s", script, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("%s %s: %v", script, strings.Join(args, " "), err)
	}
	WaitProxyRolledOut(t, client, 10*time.Minute)
}

// ProxyImage is the image of the kube-proxy DaemonSet's pod template.
func ProxyImage(t testing.TB, client kubernetes.Interface) string {
	t.Helper()
	ds, err := client.AppsV1().DaemonSets("kube-system").Get(context.Background(), "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get daemonset kube-system/kube-proxy: %v", err)
	}
	return ds.Spec.Template.Spec.Containers[0].Image
}

// WaitProxyRolledOut waits until the kube-proxy DaemonSet runs its current template,
// available, on every node it targets (what kubectl rollout status waits for).
func WaitProxyRolledOut(t testing.TB, client kubernetes.Interface, timeout time.Duration) {
	t.Helper()
	kubeclient.Eventually(t, timeout, "daemonset kube-system/kube-proxy rolled out", func(ctx context.Context) (bool, error) {
		ds, err := client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := ds.Status
		if s.ObservedGeneration < ds.Generation {
			return false, nil
		}
		if s.UpdatedNumberScheduled != s.DesiredNumberScheduled || s.NumberAvailable != s.DesiredNumberScheduled {
			return false, fmt.Errorf("%d of %d updated, %d available", s.UpdatedNumberScheduled, s.DesiredNumberScheduled, s.NumberAvailable)
		}
		return s.DesiredNumberScheduled > 0, nil
	})
}

// AppendReport appends lines to the Markdown file $name names, when set.
func AppendReport(t testing.TB, name string, lines ...string) {
	t.Helper()
	path := os.Getenv(name)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("open report %s: %v", path, err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}
