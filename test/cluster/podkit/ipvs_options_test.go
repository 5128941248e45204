package podkit

import (
	"testing"
)

// What makes a virtual server or a real server behave differently is part of the
// comparison: upstream's session affinity left on a virtual server (persistent flag and
// timeout), another forwarding method on a real server, the same fwmark in the other
// family. Each pair of dumps below differs in that alone.
func TestCompareStatesIPVSOptions(t *testing.T) {
	const rs = `{"Address":"10.244.1.4:8080","Weight":1,"Active":0,"Inactive":0}`
	for name, c := range map[string][2]string{
		"session affinity left (persistent, timeout 10800)": {
			`{"Virtual":[{"Address":"10.96.97.216:80","Protocol":"TCP","Scheduler":"rr","Flags":3,"Timeout":10800,"Real":[` + rs + `]}]}`,
			`{"Virtual":[{"Address":"10.96.97.216:80","Protocol":"TCP","Scheduler":"rr","Flags":2,"Timeout":0,"Real":[` + rs + `]}]}`,
		},
		"real server tunnelled instead of masqueraded": {
			`{"Virtual":[{"Address":"10.96.97.216:80","Protocol":"TCP","Scheduler":"rr","Real":[{"Address":"10.244.1.4:8080","Weight":1,"ConnectionFlags":2}]}]}`,
			`{"Virtual":[{"Address":"10.96.97.216:80","Protocol":"TCP","Scheduler":"rr","Real":[{"Address":"10.244.1.4:8080","Weight":1,"ConnectionFlags":0}]}]}`,
		},
		"fwmark 5 in IPv6 instead of IPv4": {
			`{"Virtual":[{"Address":"fwmark 5","Protocol":"0","Scheduler":"rr","Family":10}]}`,
			`{"Virtual":[{"Address":"fwmark 5","Protocol":"0","Scheduler":"rr","Family":2}]}`,
		},
	} {
		got := map[string]string{"ipvs": c[0]}
		want := map[string]string{"ipvs": c[1]}
		for _, p := range []string{"iptables-legacy", "ip6tables-legacy", "ipset"} {
			got[p], want[p] = "", ""
		}
		diffs, err := CompareStates(got, want)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(diffs) != 1 {
			t.Errorf("%s: no difference found", name)
		}
	}
}
