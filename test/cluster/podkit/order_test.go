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
