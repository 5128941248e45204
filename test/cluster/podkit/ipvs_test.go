package podkit

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// testdata/ipvs-dump.txt is a real dump: node-a's state-ours-gate-on/ipvs.txt of scenario 3
// (2026-12-06), moby/ipvs's modprobe warning first, then the JSON line.
func TestParseIPVSDump(t *testing.T) {
	raw, err := os.ReadFile("testdata/ipvs-dump.txt")
	if err != nil {
		t.Fatal(err)
	}
	real := string(raw)
	warning, table, _ := strings.Cut(real, "\n")
	if !strings.HasPrefix(warning, `time="`) || !strings.HasPrefix(table, "{") {
		t.Fatalf("testdata is not a warning line then the table: %.200q", real)
	}
	for name, log := range map[string]string{
		"real dump (warning first)": real,
		// stdout and stderr are two streams: the log may order them either way.
		"warning after the table": table + warning + "\n",
		"CRLF":                    strings.ReplaceAll(real, "\n", "\r\n"),
		"table alone":             table,
	} {
		got, err := ParseIPVSDump(log)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got.Virtual) != 3 {
			t.Errorf("%s: %d virtual servers, want 3", name, len(got.Virtual))
			continue
		}
		lines := got.Lines()
		for _, want := range []string{
			"TCP 10.96.0.1:443 rr",
			"TCP 10.96.0.1:443 -> 10.0.2.100:28742 weight 1",
			"TCP 10.96.97.216:80 -> 10.244.1.4:8080 weight 1",
			"TCP 10.96.97.216:9000 -> 10.244.2.15:9000 weight 1",
		} {
			if !slices.Contains(lines, want) {
				t.Errorf("%s: Lines() has no %q: %q", name, want, lines)
			}
		}
		if len(lines) != 10 {
			t.Errorf("%s: %d lines, want 3 virtual + 7 real: %q", name, len(lines), lines)
		}
	}
	for _, bad := range []string{warning + "\n", "", "error: exit 1: open IPVS netlink: permission denied"} {
		if _, err := ParseIPVSDump(bad); err == nil {
			t.Errorf("ParseIPVSDump(%q) = no error, want one", bad)
		}
	}
}
