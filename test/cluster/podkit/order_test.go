package podkit

import (
	"strings"
	"testing"
)

// Rule order within a chain is what iptables runs: the swap leaving upstream's rules in
// another order than ours alone writes them (here KUBE-FIREWALL's DROP jump moved ahead
// of the IPVS access filter in INPUT) is a difference, even with the same rules. The
// order of tables (module load order in iptables-legacy-save) is not.
func TestCompareStatesRuleOrder(t *testing.T) {
	alone := realState(t)
	after := realState(t)
	const first = `-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER` + "\n"
	const last = "-A INPUT -j KUBE-FIREWALL\n"
	if !strings.Contains(after["iptables-legacy"], first) || !strings.Contains(after["iptables-legacy"], last) {
		t.Fatal("testdata has not the INPUT rules this test moves")
	}
	s := strings.Replace(after["iptables-legacy"], last, "", 1)
	after["iptables-legacy"] = strings.Replace(s, first, last+first, 1)
	diffs, err := CompareStates(after, alone)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0].Part != "iptables-legacy" {
		t.Errorf("INPUT's rules reordered: diffs %+v, want one in iptables-legacy", diffs)
	}

	// The same tables in another order: no difference.
	tables := strings.SplitAfter(alone["iptables-legacy"], "COMMIT\n")
	if len(tables) < 3 {
		t.Fatalf("testdata has %d tables, want 2 or more", len(tables)-1)
	}
	swapped := realState(t)
	swapped["iptables-legacy"] = tables[1] + tables[0] + strings.Join(tables[2:], "")
	if diffs, err := CompareStates(swapped, alone); err != nil || len(diffs) != 0 {
		t.Errorf("tables in another order: %+v, %v; want no difference", diffs, err)
	}
}

// A CNI plugin's jump in a built-in chain goes where the plugin put it when a pod first
// needed it: its order among kube-proxy's rules is not compared (seen on the cluster on
// 2026-12-07: after the swap portmap's CNI-HOSTPORT-MASQ jump came first in nat
// POSTROUTING, in ours alone after the clean-up KUBE-POSTROUTING's did), but the jump
// itself still is, and so is the order of the other rules.
func TestCompareStatesIgnoresCNIJumpOrder(t *testing.T) {
	const kube = `-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`
	const cni = `-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ`
	const masq = "-A POSTROUTING -s 10.244.1.0/24 -o eth0 -j MASQUERADE"
	nat := func(rules ...string) map[string]string {
		state := realState(t)
		if !strings.Contains(state["iptables-legacy"], kube+"\n"+masq+"\n") {
			t.Fatal("testdata has not the POSTROUTING rules this test moves")
		}
		state["iptables-legacy"] = strings.Replace(state["iptables-legacy"], kube+"\n"+masq+"\n", strings.Join(rules, "\n")+"\n", 1)
		return state
	}
	for _, tc := range []struct {
		name       string
		after      map[string]string
		wantDiffer bool
	}{
		{"CNI jump moved above ours", nat(cni, kube, masq), false},
		{"CNI jump gone", nat(kube, masq), true},
		{"ours moved below another rule", nat(cni, masq, kube), true},
	} {
		diffs, err := CompareStates(tc.after, nat(kube, cni, masq))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := len(diffs) > 0; got != tc.wantDiffer {
			t.Errorf("%s: diffs %+v, want a difference: %v", tc.name, diffs, tc.wantDiffer)
		}
	}
}
