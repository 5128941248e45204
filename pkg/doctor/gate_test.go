package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// configz bodies as ipvs-proxy and upstream's kube-proxy serve them.
const (
	configzGateOn  = `{"kubeproxy.config.k8s.io":{"mode":"ipvs","featureGates":{"IPVSImmediateTermination":true}},"ipvs-proxy.kubernetes.io":{"warnings":[]}}`
	configzGateOff = `{"kubeproxy.config.k8s.io":{"mode":"ipvs"},"ipvs-proxy.kubernetes.io":{"warnings":[]}}`
	configzUpstrm  = `{"kubeproxy.config.k8s.io":{"mode":"ipvs","featureGates":{}}}`
)

// TestGateReported: the report says whether the running kube-proxy has the
// gate on, read from its /configz over HTTP, and "unknown" (with why) when
// it cannot be read, in both output formats; not knowing is no gap.
func TestGateReported(t *testing.T) {
	serve := func(status int, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		return s.URL + "/configz"
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/configz"
	closed.Close()
	cases := []struct {
		name, url string
		want      string
		reason    string
	}{
		{"gate on", serve(200, configzGateOn), GateOn, ""},
		{"gate off", serve(200, configzGateOff), GateOff, ""},
		{"upstream kube-proxy", serve(200, configzUpstrm), GateOff, "not ipvs-proxy"},
		{"nothing listening", closedURL, GateUnknown, "connection refused"},
		{"error status", serve(500, "no"), GateUnknown, "500"},
		{"not asked", "", GateUnknown, "not asked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newFakeNode(t).sources()
			if tc.url != "" {
				src.ReadConfigz, src.ConfigzURL = readConfigz(tc.url), tc.url
			}
			var out bytes.Buffer
			code := Run(context.Background(), CommandOptions{Output: "json"}, src, &out, &bytes.Buffer{})
			var r Report
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			g := r.Node.ImmediateTermination
			if g.State != tc.want || !strings.Contains(g.Reason, tc.reason) || (tc.reason == "" && g.Reason != "") {
				t.Errorf("gate %+v; want state %s, reason with %q", g, tc.want, tc.reason)
			}
			if code == ExitCannotInspect || len(r.Gaps) > 0 {
				t.Errorf("an unknown gate counted as a gap: exit %d, gaps %v", code, r.Gaps)
			}
			out.Reset()
			Run(context.Background(), CommandOptions{Output: "table"}, src, &out, &bytes.Buffer{})
			if !strings.Contains(out.String(), "Gate IPVSImmediateTermination: "+tc.want) {
				t.Errorf("table output lacks the gate's state %s:\n%s", tc.want, out.String())
			}
		})
	}
}

// TestJSONErrorWhenCannotInspect: with -o json, a failure before the
// inspection (no IPVS, a bad kubeconfig) still prints one JSON document on
// stdout: an error object; table output keeps stdout empty.
func TestJSONErrorWhenCannotInspect(t *testing.T) {
	noIPVS := func(string) (Sources, error) { return Sources{}, errors.New("no IPVS in this kernel or namespace") }
	fakeNode := func(string) (Sources, error) { return newFakeNode(t).sources(), nil }
	cases := []struct {
		name    string
		args    []string
		sources func(string) (Sources, error)
		want    string
	}{
		{"no IPVS", []string{"-o", "json"}, noIPVS, "no IPVS"},
		{"bad kubeconfig", []string{"-o", "json", "--kubeconfig", "/nonexistent/kubeconfig"}, fakeNode, "/nonexistent/kubeconfig"},
		{"table output", nil, noIPVS, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := mainWith(tc.args, &out, &errOut, tc.sources); code != ExitCannotInspect {
				t.Fatalf("exit %d, want %d", code, ExitCannotInspect)
			}
			if !strings.Contains(errOut.String(), "ipvs-doctor: ") {
				t.Errorf("stderr %q lacks the error", errOut.String())
			}
			if tc.want == "" {
				if out.Len() != 0 {
					t.Errorf("table output: stdout %q, want nothing", out.String())
				}
				return
			}
			var obj struct {
				Error    string `json:"error"`
				ExitCode int    `json:"exitCode"`
			}
			if err := json.Unmarshal(out.Bytes(), &obj); err != nil || !strings.Contains(obj.Error, tc.want) || obj.ExitCode != ExitCannotInspect {
				t.Errorf("stdout %q: want a JSON error naming %q with exitCode %d (%v)", out.String(), tc.want, ExitCannotInspect, err)
			}
		})
	}
}

// TestMainReadsConfigz: the command reads --configz-url (the flag reaches
// the collector).
func TestMainReadsConfigz(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(configzGateOn)) }))
	defer s.Close()
	fakeNode := func(string) (Sources, error) { return newFakeNode(t).sources(), nil }
	var out bytes.Buffer
	mainWith([]string{"--configz-url", s.URL + "/configz"}, &out, &bytes.Buffer{}, fakeNode)
	if !strings.Contains(out.String(), "Gate IPVSImmediateTermination: on (from "+s.URL+"/configz") {
		t.Errorf("output lacks the gate read from %s:\n%s", s.URL, out.String())
	}
}

// TestJSONErrorOnBadUsage: with -o json, a usage error (exit 3) also
// prints a JSON error object on stdout, like the other early exits: a
// caller parsing stdout gets a document on every path.
func TestJSONErrorOnBadUsage(t *testing.T) {
	unused := func(string) (Sources, error) { t.Fatal("usage error reached the node"); return Sources{}, nil }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad CIDR", []string{"-o", "json", "--exclude-cidrs", "10.0.0.0/99"}, "--exclude-cidrs"},
		{"exclusive flags", []string{"-o", "json", "--in-cluster", "--kubeconfig", "/k"}, "exclude each other"},
		{"unknown flag", []string{"-o", "json", "--bogus"}, "bogus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := mainWith(tc.args, &out, &errOut, unused); code != ExitUsage {
				t.Fatalf("exit %d, want %d", code, ExitUsage)
			}
			var obj struct {
				Error    string `json:"error"`
				ExitCode int    `json:"exitCode"`
			}
			if err := json.Unmarshal(out.Bytes(), &obj); err != nil || !strings.Contains(obj.Error, tc.want) || obj.ExitCode != ExitUsage {
				t.Errorf("stdout %q: want a JSON error naming %q with exitCode %d (%v)", out.String(), tc.want, ExitUsage, err)
			}
		})
	}
}
