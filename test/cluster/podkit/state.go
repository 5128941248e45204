package podkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
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
// rules and the ipsets with their members (ipset save). Legacy iptables only: the nodes' kernel has no nf_tables
// (iptables-nft-save there: "Could not fetch rule set generation id: Invalid argument"),
// so neither proxy can have rules in the nft backend.
var stateCommands = []struct {
	name, image string
	command     []string
}{
	{"ipvs", ClientImage, []string{"/rolling-client", "dump"}},
	{"iptables-legacy", UpstreamImage, []string{"/usr/sbin/iptables-legacy-save"}},
	{"ip6tables-legacy", UpstreamImage, []string{"/usr/sbin/ip6tables-legacy-save"}},
	{"ipset", UpstreamImage, []string{"/usr/sbin/ipset", "save"}},
}

// NodeState reads node's IPVS table, iptables rules (IPv4 and IPv6) and
// ipsets from a privileged host-network pod; a command that fails gives
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

// StateParts are the parts of a node state, in report order.
var StateParts = []string{"ipvs", "iptables-legacy", "ip6tables-legacy", "ipset"}

// StateLines normalizes one part of a node state for comparison: IPVS as
// IPVSTable.Lines, iptables as Rules, ipset save with each set's random initval
// dropped; sorted.
func StateLines(part, text string) ([]string, error) {
	if strings.HasPrefix(text, "error: ") {
		return nil, fmt.Errorf("%s: %.300s", part, text)
	}
	var out []string
	switch part {
	case "ipvs":
		t, err := ParseIPVSDump(text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", part, err)
		}
		return t.Lines(), nil
	case "ipset":
		for _, l := range strings.Split(text, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if i := slices.Index(f, "initval"); f[0] == "create" && i >= 0 && i+1 < len(f) {
				f = slices.Delete(f, i, i+2)
			}
			out = append(out, strings.Join(f, " "))
		}
	default:
		out = Rules(text)
	}
	sort.Strings(out)
	return out, nil
}

// StateDiff is, for one part, what a node state has that a reference lacks (Extra) and
// what it lacks (Missing).
type StateDiff struct {
	Part           string
	Extra, Missing []string
}

// CompareStates compares state got with reference want part by part (StateParts);
// parts equal in both are left out. A part that cannot be read in either, or that either
// lacks (not read: unlike an empty table), is an error.
func CompareStates(got, want map[string]string) ([]StateDiff, error) {
	var diffs []StateDiff
	var errs []error
	for _, part := range StateParts {
		_, inGot := got[part]
		_, inWant := want[part]
		if !inGot || !inWant {
			errs = append(errs, fmt.Errorf("%s: not in both states (in the first: %v, in the second: %v)", part, inGot, inWant))
			continue
		}
		g, err1 := StateLines(part, got[part])
		w, err2 := StateLines(part, want[part])
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, err)
			continue
		}
		d := StateDiff{Part: part, Extra: notIn(g, w), Missing: notIn(w, g)}
		if part != "ipvs" && part != "ipset" {
			// StateLines sorts; iptables runs a chain's rules in order.
			extra, missing := orderDiff(Rules(got[part]), Rules(want[part]))
			d.Extra, d.Missing = append(d.Extra, extra...), append(d.Missing, missing...)
		}
		if len(d.Extra) > 0 || len(d.Missing) > 0 {
			diffs = append(diffs, d)
		}
	}
	return diffs, errors.Join(errs...)
}

// notIn is the lines of a that b does not have (as many times as a has them more).
func notIn(a, b []string) []string {
	_, rest := matchLines(a, b)
	return rest
}

// common is a's lines that b has too (as many times as b has them), in a's order.
func common(a, b []string) []string {
	matched, _ := matchLines(a, b)
	return matched
}

// matchLines splits a, in its order, into the lines b has too (each of b's lines matched
// once) and the rest.
func matchLines(a, b []string) (matched, rest []string) {
	count := map[string]int{}
	for _, l := range b {
		count[l]++
	}
	for _, l := range a {
		if count[l] > 0 {
			count[l]--
			matched = append(matched, l)
			continue
		}
		rest = append(rest, l)
	}
	return matched, rest
}

// orderDiff compares, chain by chain, the order of the rules two iptables states (Rules)
// both have; a chain whose common rules run in another order gives a line each way,
// "TABLE: order of CHAIN: RULE ; RULE ..." (no "|": the lines go into Markdown table cells). Tables and chains may come in any order.
func orderDiff(got, want []string) (extra, missing []string) {
	g, w := chainRules(got), chainRules(want)
	chains := make([]string, 0, len(g))
	for c := range g {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		gc := common(g[c], w[c])
		wc := common(w[c], g[c])
		if !slices.Equal(gc, wc) {
			extra = append(extra, c+": "+strings.Join(gc, " ; "))
			missing = append(missing, c+": "+strings.Join(wc, " ; "))
		}
	}
	return extra, missing
}

// chainRules is the rules (-A lines) of Rules' output by "TABLE: order of CHAIN", in order,
// less the CNI plugins' jumps (cniJump).
func chainRules(rules []string) map[string][]string {
	out := map[string][]string{}
	for _, l := range rules {
		table, rule, _ := strings.Cut(l, ": ")
		f := strings.Fields(rule)
		if len(f) < 2 || f[0] != "-A" || cniJump(f) {
			continue
		}
		key := table + ": order of " + f[1]
		out[key] = append(out[key], rule)
	}
	return out
}

// cniJump says whether a rule jumps to a CNI plugin's chain (CNI-HOSTPORT-MASQ, CNI-xxxx).
// A plugin inserts its jump at the top of a built-in chain when a pod first needs it, so its
// place among kube-proxy's rules says when that pod came, not what the proxies wrote: after
// the clean-up that makes "ours alone", ours' jump is above a portmap jump that was above
// upstream's. The jumps are still compared as lines; only their order is not.
func cniJump(f []string) bool {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" && strings.HasPrefix(f[i+1], "CNI-") {
			return true
		}
	}
	return false
}
