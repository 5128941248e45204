package app

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	_ "k8s.io/component-base/logs/json/register" // --logging-format=json, as main imports it
)

// mainArgsEnv makes the test binary run Main with these arguments (split on
// \x1f): logging is set up once per process, so each case needs its own.
const mainArgsEnv = "IPVS_PROXY_TEST_MAIN_ARGS"

// TestFatalErrorInTheLogFormat runs the real Main in a child process: under
// --logging-format=json a fatal error is one JSON log line (whether it
// happens before the logging setup, resolving the flags or the file, or
// after it); under text it stays the plain "kube-proxy: ..." line.
func TestFatalErrorInTheLogFormat(t *testing.T) {
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Exit(Main(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	configMap := writeFile(t, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy}\n")
	cases := []struct {
		name string
		args []string
		json bool
		want string
	}{
		{name: "flag validation", args: []string{"--logging-format=json", "--ipvs-min-sync-period=60s"}, json: true, want: "--ipvs-min-sync-period"},
		{name: "config file", args: []string{"--logging-format=json", "--config=" + configMap}, json: true, want: "ConfigMap"},
		{name: "after the logging setup", args: []string{"--logging-format=json", "--hostname-override=node-1", "--kubeconfig=/nonexistent/kubeconfig"},
			json: true, want: "/nonexistent/kubeconfig"},
		{name: "text", args: []string{"--ipvs-min-sync-period=60s"}, want: "--ipvs-min-sync-period"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFatalErrorInTheLogFormat$")
			cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join(tc.args, "\x1f"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want code 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !tc.json {
				if !strings.HasPrefix(last, "kube-proxy: ") || !strings.Contains(last, tc.want) {
					t.Errorf("last line %q, want the plain error naming %q", last, tc.want)
				}
				return
			}
			for _, line := range lines {
				if !json.Valid([]byte(line)) {
					t.Errorf("stderr line %q is not JSON", line)
				}
			}
			var entry struct{ Msg, Err string }
			if err := json.Unmarshal([]byte(last), &entry); err != nil || entry.Msg == "" || !strings.Contains(entry.Err, tc.want) {
				t.Errorf("last line %q: want a JSON log entry whose err names %q (%v)", last, tc.want, err)
			}
		})
	}
}
