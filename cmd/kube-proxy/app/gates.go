package app

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	metricsfeatures "k8s.io/component-base/metrics/features"
)

// IPVSImmediateTermination makes the proxier delete a removed endpoint's
// real server (and its conntrack entries) at once instead of draining it
// at weight 0 (ipvsproxy.Config.ImmediateTermination).
const IPVSImmediateTermination featuregate.Feature = "IPVSImmediateTermination"

// kubeProxyIPVS is upstream's gate that allows mode ipvs; this binary serves
// ipvs whatever it says.
const kubeProxyIPVS featuregate.Feature = "KubeProxyIPVS"

// addFeatureGates adds ours, and what upstream kube-proxy adds on top of the
// Kubernetes gates (k8s.io/kubernetes/pkg/features registers those into the
// default gate), to gate.
func addFeatureGates(gate featuregate.MutableVersionedFeatureGate) error {
	ours := map[featuregate.Feature]featuregate.VersionedSpecs{
		IPVSImmediateTermination: {{Version: version.MustParse("1.37"), Default: false, PreRelease: featuregate.Alpha}},
	}
	if err := gate.AddVersioned(ours); err != nil {
		return fmt.Errorf("add feature gate %s: %w", IPVSImmediateTermination, err)
	}
	if err := metricsfeatures.AddFeatureGates(gate); err != nil {
		return fmt.Errorf("add metrics feature gates: %w", err)
	}
	if err := logsapi.AddFeatureGates(gate); err != nil {
		return fmt.Errorf("add logging feature gates: %w", err)
	}
	return nil
}

// setFeatureGates applies the configuration's featureGates; an unknown or
// locked gate is an error naming where it came from.
func setFeatureGates(gate featuregate.MutableVersionedFeatureGate, gates map[string]bool, source string) error {
	if err := gate.SetFromMap(gates); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}
