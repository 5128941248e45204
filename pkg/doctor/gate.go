package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultConfigzURL is the running kube-proxy's /configz at the default
// metricsBindAddress (127.0.0.1:10249), reachable from the node and from
// the kube-proxy pod (host network).
const DefaultConfigzURL = "http://127.0.0.1:10249/configz"

// gateName is the feature gate whose state the report shows.
const gateName = "IPVSImmediateTermination"

// Gate states.
const (
	GateOn      = "on"
	GateOff     = "off"
	GateUnknown = "unknown"
)

// GateFact says whether the running kube-proxy has IPVSImmediateTermination
// on, as its /configz shows, or why that is unknown.
type GateFact struct {
	State string `json:"state"`
	// Source is where the state was read ("" when nothing was asked).
	Source string `json:"source,omitempty"`
	// Reason explains an unknown state, or that the proxy is not ipvs-proxy.
	Reason string `json:"reason,omitempty"`
}

// readConfigz returns the function that GETs a /configz (short timeout:
// it is on the node).
func readConfigz(url string) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
}

// gateFromConfigz reads the gate from a /configz body: the
// KubeProxyConfiguration's featureGates (absent means off, the default).
// ipvs-proxy adds its own section; without it the proxy is upstream's
// kube-proxy (or an older ipvs-proxy), which has no such gate.
func gateFromConfigz(body []byte, source string) GateFact {
	var configz map[string]json.RawMessage
	var proxy struct {
		FeatureGates map[string]bool `json:"featureGates"`
	}
	if err := json.Unmarshal(body, &configz); err != nil {
		return GateFact{State: GateUnknown, Source: source, Reason: "not JSON: " + err.Error()}
	}
	raw, ok := configz["kubeproxy.config.k8s.io"]
	if !ok || json.Unmarshal(raw, &proxy) != nil {
		return GateFact{State: GateUnknown, Source: source, Reason: "no kubeproxy.config.k8s.io configuration in /configz"}
	}
	fact := GateFact{State: GateOff, Source: source}
	if proxy.FeatureGates[gateName] {
		fact.State = GateOn
	}
	if _, ours := configz["ipvs-proxy.kubernetes.io"]; !ours {
		fact.Reason = "the kube-proxy answering is not ipvs-proxy (no ipvs-proxy section in /configz): upstream's kube-proxy has no such gate"
	}
	return fact
}
