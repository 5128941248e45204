package podkit

import "testing"

// A part absent from a state (a container whose log was not kept, a saved state without
// its file) is not an empty table: iptables-save printing nothing and ipset save printing
// nothing are real reads, a missing part is none, and both missing compared "equal".
func TestCompareStatesMissingPart(t *testing.T) {
	full := realState(t)
	for _, part := range []string{"iptables-legacy", "ip6tables-legacy", "ipset"} {
		a, b := realState(t), realState(t)
		delete(a, part)
		delete(b, part)
		if diffs, err := CompareStates(a, b); err == nil {
			t.Errorf("%s missing from both states: %+v, no error", part, diffs)
		}
		a = realState(t)
		delete(a, part)
		if _, err := CompareStates(a, full); err == nil {
			t.Errorf("%s missing from one state: no error", part)
		}
	}
}
