package podkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

// stateCommands are what NodeState reads, by container name: the IPVS table (rolling-client
// dump) and, with upstream's kube-proxy image (it ships iptables and ipset), the iptables
// rules and the ipset names. Legacy iptables only: the nodes' kernel has no nf_tables
// (iptables-nft-save there: "Could not fetch rule set generation id: Invalid argument"),
// so neither proxy can have rules in the nft backend.
var stateCommands = []struct {
	name, image string
	command     []string
}{
	{"ipvs", ClientImage, []string{"/rolling-client", "dump"}},
	{"iptables-legacy", UpstreamImage, []string{"/usr/sbin/iptables-legacy-save"}},
	{"ip6tables-legacy", UpstreamImage, []string{"/usr/sbin/ip6tables-legacy-save"}},
	{"ipset", UpstreamImage, []string{"/usr/sbin/ipset", "list", "-n"}},
}

// NodeState reads node's IPVS table, iptables rules (IPv4 and IPv6) and
// ipset names from a privileged host-network pod; a command that fails gives
// "error: exit N: <log>".
func NodeState(t testing.TB, client kubernetes.Interface, ns, node, name string) map[string]string {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
	for _, c := range stateCommands {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: c.name, Image: c.image, ImagePullPolicy: corev1.PullNever, Command: c.command})
	}
	HostPod(pod)
	Create(t, client, ns, pod)
	var done *corev1.Pod
	kubeclient.Eventually(t, PodTimeout, "node state pod "+ns+"/"+name+" done", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		done = p
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, nil
	})
	out := map[string]string{}
	for _, st := range done.Status.ContainerStatuses {
		raw, err := client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: st.Name}).DoRaw(context.Background())
		if err != nil {
			t.Fatalf("read the log of pod %s/%s container %s: %v", ns, name, st.Name, err)
		}
		out[st.Name] = string(raw)
		if term := st.State.Terminated; term != nil && term.ExitCode != 0 {
			out[st.Name] = fmt.Sprintf("error: exit %d: %s", term.ExitCode, strings.TrimSpace(string(raw)))
		}
	}
	_ = client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	return out
}

// Rules normalizes iptables-save output for comparison: no comments, no COMMIT lines, no
// packet counters; one "table: rule" per line.
func Rules(save string) []string {
	var out []string
	table := ""
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.HasPrefix(l, "#"), l == "COMMIT":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			// ":CHAIN POLICY [p:b]": the chain and its policy, counters dropped.
			f := strings.Fields(l)
			if len(f) >= 2 {
				out = append(out, table+": "+f[0]+" "+f[1])
			}
		default:
			out = append(out, table+": "+l)
		}
	}
	return out
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// SaveState writes each part of a node state to DIR/PART.txt.
func SaveState(t testing.TB, dir string, state map[string]string) {
	t.Helper()
	for part, text := range state {
		if err := writeFile(filepath.Join(dir, part+".txt"), []byte(text)); err != nil {
			t.Fatalf("save node state: %v", err)
		}
	}
}

// LoadState reads what SaveState wrote; nil when dir does not exist.
func LoadState(t testing.TB, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("load node state: %v", err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".txt")] = string(b)
	}
	return out
}
