package app

import (
	"reflect"
	"strings"
	"testing"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"
)

// FuzzDecodeConfig feeds arbitrary bytes to the config file decoder: no
// panic; a refusal always says why; an accepted document survives defaults
// and validation, and when valid it reads back the same after being
// written out (--write-config-to).
// The zero klog.Logger drops the decoder's warnings.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n"))
	f.Add([]byte("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nipvs:\n  syncPeriod: soon\n"))
	gate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	if err := addFeatureGates(gate); err != nil {
		f.Fatalf("addFeatureGates: %v", err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := decodeConfig(klog.Logger{}, "fuzz.conf", data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Errorf("refused without a reason: %q", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("no configuration and no error")
		}
		setDefaults(cfg)
		if errs := validate(cfg, gate); len(errs) > 0 {
			return
		}
		checkWritesBack(t, cfg)
	})
}

// checkWritesBack writes a valid configuration as --write-config-to does
// and decodes it again.
func checkWritesBack(t *testing.T, cfg *v1alpha1.KubeProxyConfiguration) {
	t.Helper()
	out := cfg.DeepCopy()
	setConfigKind(out)
	written, err := yaml.Marshal(out)
	if err != nil {
		t.Fatalf("valid configuration cannot be written: %v\n%+v", err, cfg)
	}
	again, err := decodeConfig(klog.Logger{}, "written.conf", written)
	if err != nil {
		t.Fatalf("written configuration does not decode: %v\n%s", err, written)
	}
	setDefaults(again)
	again.TypeMeta = cfg.TypeMeta
	if !reflect.DeepEqual(cfg, again) {
		t.Errorf("configuration changed on the way through a file:\n%s", written)
	}
}
