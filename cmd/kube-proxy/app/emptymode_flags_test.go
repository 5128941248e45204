package app

import (
	"context"
	"strings"
	"testing"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

// TestEmptyModeWarnsWithFlagsOnly: without --config and without
// --proxy-mode the mode is empty too (upstream's iptables): the same
// warning; --proxy-mode=ipvs has none, --proxy-mode=iptables is refused.
func TestEmptyModeWarnsWithFlagsOnly(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		warn       bool
		refused    bool
	}{
		{name: "no --proxy-mode", warn: true},
		{name: "ipvs", flag: "--proxy-mode=ipvs"},
		{name: "iptables", flag: "--proxy-mode=iptables", refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logged := &lockedBuffer{}
			logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(logged)))
			ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), logger))
			defer cancel()
			host := newTestHost(t)
			host.client = newFakeClient(testObjects())
			cmd, err := NewCommand(ctx, host.env(), newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"--hostname-override=worker-1", "--metrics-bind-address=" + freePort(t), "--healthz-bind-address=" + freePort(t)}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			cmd.SetArgs(args)
			done := make(chan error, 1)
			go func() { done <- cmd.Execute() }()
			if tc.refused {
				if err := <-done; err == nil || !strings.Contains(err.Error(), "iptables") {
					t.Errorf("--proxy-mode=iptables: %v, want a refusal naming the mode", err)
				}
				return
			}
			defer func() { cancel(); <-done }()
			waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
			if warned := strings.Contains(logged.String(), "mode is empty"); warned != tc.warn {
				t.Errorf("warning logged: %v, want %v", warned, tc.warn)
			}
		})
	}
}
