package app

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

// TestEmptyModeWarns: an empty mode (kubeadm's default, iptables for
// upstream) runs ipvs with a warning in the log and in /configz; mode ipvs
// has none.
func TestEmptyModeWarns(t *testing.T) {
	for _, mode := range []string{`""`, "ipvs"} {
		t.Run("mode "+mode, func(t *testing.T) {
			logged := &lockedBuffer{}
			logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(logged)))
			ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), logger))
			defer cancel()
			host := newTestHost(t)
			host.client = newFakeClient(testObjects())
			metricsAddr := freePort(t)
			config := strings.Replace(kubeadmLikeConfig(freePort(t), metricsAddr), `mode: ""`, "mode: "+mode, 1)
			cmd, err := NewCommand(ctx, host.env(), newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			cmd.SetArgs(withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, config))
			done := make(chan error, 1)
			go func() { done <- cmd.Execute() }()
			defer func() { cancel(); <-done }()
			waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })

			warned := strings.Contains(logged.String(), "mode is empty")
			want := mode == `""`
			if warned != want {
				t.Errorf("warning logged: %v, want %v; log:\n%s", warned, want, logged.String())
			}
			var configz map[string]json.RawMessage
			if status, _, body := get(t, "http://"+metricsAddr+"/configz"); status != 200 || json.Unmarshal([]byte(body), &configz) != nil {
				t.Fatalf("/configz: %d %s", status, body)
			}
			var ours struct{ Warnings []string }
			var proxy struct{ Mode string }
			if json.Unmarshal(configz[configzSection], &ours) != nil || json.Unmarshal(configz["kubeproxy.config.k8s.io"], &proxy) != nil {
				t.Fatalf("/configz: %s", configz)
			}
			served := len(ours.Warnings) == 1 && strings.Contains(ours.Warnings[0], "mode is empty")
			if served != want || (!want && len(ours.Warnings) != 0) || proxy.Mode != "ipvs" {
				t.Errorf("/configz warnings %q, mode %q; want the empty-mode warning: %v, mode ipvs", ours.Warnings, proxy.Mode, want)
			}
		})
	}
}

// lockedBuffer is a log destination safe for the command's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
