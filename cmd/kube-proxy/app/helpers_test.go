package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// configHeader starts every test configuration file.
const configHeader = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"

// newTestGate is a private copy of the process-wide gate with our gates.
func newTestGate(t *testing.T) featuregate.MutableVersionedFeatureGate {
	t.Helper()
	gate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if err := addFeatureGates(gate); err != nil {
		t.Fatalf("addFeatureGates: %v", err)
	}
	return gate
}

// writeFile writes content into a new file of the test and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// withConfigFile replaces "@config" in args by a file holding content.
func withConfigFile(t *testing.T, args []string, content string) []string {
	t.Helper()
	if content == "" {
		return args
	}
	path := writeFile(t, "config.yaml", content)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "@config", path)
	}
	return out
}

// resolve parses args and resolves the configuration as the command does
// (without applying logging or running anything).
func resolve(t *testing.T, args []string, gate featuregate.MutableVersionedFeatureGate) (*Options, error) {
	t.Helper()
	opts := newOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	opts.addFlags(fs, gate)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return opts, opts.complete(klog.Background(), fs, gate)
}

func mustResolve(t *testing.T, args []string) *v1alpha1.KubeProxyConfiguration {
	t.Helper()
	opts, err := resolve(t, args, newTestGate(t))
	if err != nil {
		t.Fatalf("resolve %v: %v", args, err)
	}
	return opts.config
}
