package podkit

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// IPVSKernel is what a node's loaded ip_vs module is, read on the node.
type IPVSKernel struct {
	// Taint is /sys/module/ip_vs/taint: "OE" for hack/legacy-ipvs's out-of-tree modules,
	// empty for Debian's signed ones. SrcVersion is /sys/module/ip_vs/srcversion: the
	// kernel has it for out-of-tree modules only (empty for Debian's).
	Taint, SrcVersion string
	// ConnReuseMode is net.ipv4.vs.conn_reuse_mode in the host's network namespace.
	ConnReuseMode string
}

// Profile names the kernel profile (make demo's, as node-start makes it): legacy for the
// out-of-tree ip_vs (taint O or OE) with conn_reuse_mode 0, stock for Debian's (no taint)
// with the kernel's conn_reuse_mode 1; anything else is "unknown", so no row takes it
// for either.
func (k IPVSKernel) Profile() string {
	switch {
	case (k.Taint == "OE" || k.Taint == "O") && k.ConnReuseMode == "0":
		return "legacy"
	case k.Taint == "" && k.ConnReuseMode == "1":
		return "stock"
	}
	return "unknown"
}

func (k IPVSKernel) String() string {
	none := func(v string) string {
		if v == "" {
			return "none"
		}
		return v
	}
	return fmt.Sprintf("%s (ip_vs taint %s, srcversion %s; conn_reuse_mode %s)", k.Profile(), none(k.Taint), none(k.SrcVersion), k.ConnReuseMode)
}

// parseIPVSKernel reads kernelScript's output: NAME=VALUE lines.
func parseIPVSKernel(out string) (IPVSKernel, error) {
	var k IPVSKernel
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		seen[name] = true
		switch name {
		case "taint":
			k.Taint = value
		case "srcversion":
			k.SrcVersion = value
		case "conn_reuse_mode":
			k.ConnReuseMode = value
		}
	}
	// Without ip_vs loaded every read fails: conn_reuse_mode is the one always there.
	if !seen["taint"] || !seen["srcversion"] || k.ConnReuseMode == "" {
		return k, fmt.Errorf("no ip_vs taint, srcversion and conn_reuse_mode in %q", out)
	}
	return k, nil
}

// A taint that cannot be read prints no taint line (an error), not an empty taint.
const kernelScript = `t=$(cat /sys/module/ip_vs/taint) && echo "taint=$t"
echo "srcversion=$(cat /sys/module/ip_vs/srcversion 2>/dev/null)"
echo "conn_reuse_mode=$(cat /proc/sys/net/ipv4/vs/conn_reuse_mode)"`

// NodeIPVSKernel reads node's ip_vs module and conn_reuse_mode from a busybox pod on its
// host network.
func NodeIPVSKernel(t testing.TB, client kubernetes.Interface, ns, node string) IPVSKernel {
	t.Helper()
	pod := HostPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ipvs-kernel-" + node},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "read", Image: BusyboxImage, ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/busybox", "sh", "-c", kernelScript}}},
		},
	})
	out := RunToCompletion(t, client, ns, pod)["read"]
	k, err := parseIPVSKernel(out)
	if err != nil {
		t.Fatalf("ip_vs on %s: %v", node, err)
	}
	return k
}
