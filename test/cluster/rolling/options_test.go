//go:build cluster

package rolling

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// No cluster needed: go test -tags cluster -run 'TestParse|TestPodIP' ./test/cluster/rolling

func TestParsePreStop(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{{"", 0, false}, {"0", 0, false}, {"5", 5, false}, {"29", 29, false},
		{"30", 0, true}, {"-1", 0, true}, {"5s", 0, true}, {"x", 0, true}} {
		got, err := parsePreStop(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parsePreStop(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseFamily(t *testing.T) {
	for in, want := range map[string]corev1.IPFamily{"": corev1.IPv4Protocol, "IPv4": corev1.IPv4Protocol, "IPv6": corev1.IPv6Protocol} {
		if got, err := parseFamily(in); err != nil || got != want {
			t.Errorf("parseFamily(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ipv6", "6", "DualStack"} {
		if _, err := parseFamily(in); err == nil {
			t.Errorf("parseFamily(%q) took it; want an error", in)
		}
	}
}

// A dual-stack pod's deletion is paired with the real server of the row's family: the
// IPv6 row must not look for the IPv4 address (PodIP, the first of PodIPs).
func TestPodIPOfFamily(t *testing.T) {
	p := &corev1.Pod{Status: corev1.PodStatus{PodIP: "10.244.1.4", PodIPs: []corev1.PodIP{{IP: "10.244.1.4"}, {IP: "fd00:10:244:1::4"}}}}
	if got := podIP(p, corev1.IPv6Protocol); got != "fd00:10:244:1::4" {
		t.Errorf("podIP(IPv6) = %q", got)
	}
	if got := podIP(p, corev1.IPv4Protocol); got != "10.244.1.4" {
		t.Errorf("podIP(IPv4) = %q", got)
	}
	if got := podIP(&corev1.Pod{}, corev1.IPv6Protocol); got != "" {
		t.Errorf("podIP of a pod without addresses = %q, want none", got)
	}
}

// ROLLING_RATE is split between the two clients (a quarter, at least 1/s, through the
// NodePort): a rate that leaves the ClusterIP client 0/s ran it unpaced (load's schedule
// divides by the rate), and a value that did not parse ran the default 20 under a row
// that did not say so.
func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in          string
		cluster, np int
		bad         bool
	}{{"", 15, 5, false}, {"20", 15, 5, false}, {"50", 38, 12, false}, {"4", 3, 1, false}, {"2", 1, 1, false},
		{"1", 0, 0, true}, {"0", 0, 0, true}, {"-5", 0, 0, true}, {"20/s", 0, 0, true}, {"x", 0, 0, true}} {
		c, n, err := parseRate(tc.in)
		if (err != nil) != tc.bad || c != tc.cluster || n != tc.np {
			t.Errorf("parseRate(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, c, n, err, tc.cluster, tc.np, tc.bad)
		}
	}
}

// ROLLING_DURATION that does not parse (a number without its unit) ran the default 150 s.
func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{{"", 150 * time.Second, false}, {"90s", 90 * time.Second, false}, {"3m", 3 * time.Minute, false},
		{"90", 0, true}, {"0s", 0, true}, {"-1m", 0, true}, {"x", 0, true}} {
		got, err := parseDuration(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
