package app

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"
)

// The only document kube-proxy reads.
const (
	configAPIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	configKindName   = "KubeProxyConfiguration"
)

// setConfigKind sets apiVersion and kind, for writing the configuration out.
func setConfigKind(c *v1alpha1.KubeProxyConfiguration) {
	c.APIVersion, c.Kind = configAPIVersion, configKindName
}

// loadConfigFile reads and decodes the KubeProxyConfiguration in path, and
// defaults it. Errors name the file (and the field when one is to blame).
func loadConfigFile(logger klog.Logger, path string) (*v1alpha1.KubeProxyConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	cfg, err := decodeConfig(logger, path, data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	setDefaults(cfg)
	return cfg, nil
}

// decodeConfig decodes like upstream: strictly first (unknown or duplicate
// fields are errors), then leniently with a warning.
func decodeConfig(logger klog.Logger, path string, data []byte) (*v1alpha1.KubeProxyConfiguration, error) {
	cfg, err := decodeWith(data, serializer.EnableStrict)
	if err == nil {
		return cfg, nil
	}
	if !runtime.IsStrictDecodingError(err) {
		return nil, explainDecodeError(data, err)
	}
	cfg, lenientErr := decodeWith(data, serializer.DisableStrict)
	if lenientErr != nil {
		return nil, fmt.Errorf("lenient decoding after %v: %w", err, explainDecodeError(data, lenientErr))
	}
	logger.Info("Warning: using lenient decoding as strict decoding failed", "file", path, "err", err)
	return cfg, nil
}

func decodeWith(data []byte, strictness serializer.CodecFactoryOptionsMutator) (*v1alpha1.KubeProxyConfiguration, error) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register %s: %w", configAPIVersion, err)
	}
	codecs := serializer.NewCodecFactory(scheme, strictness)
	obj, gvk, err := codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, err
	}
	cfg, ok := obj.(*v1alpha1.KubeProxyConfiguration)
	if !ok {
		return nil, fmt.Errorf("got %v, want %s %s", gvk, configAPIVersion, configKindName)
	}
	return cfg, nil
}

// explainDecodeError turns the decoder's error into one line that says what
// is wrong, naming the field when the value of one does not parse.
func explainDecodeError(data []byte, err error) error {
	switch {
	case runtime.IsMissingKind(err), runtime.IsMissingVersion(err):
		return fmt.Errorf("apiVersion and kind must be %s %s", configAPIVersion, configKindName)
	case runtime.IsNotRegisteredError(err):
		return notOurDocument(documentKind(data))
	}
	if path, fieldErr := findBadField(data); path != "" {
		return fmt.Errorf("field %s: %w", path, fieldErr)
	}
	return fmt.Errorf("decode: %s", oneLine(err.Error()))
}

// notOurDocument says which document was given instead of ours, in the
// file's own words (the decoder's error names its scheme's source line).
func notOurDocument(gvk *schema.GroupVersionKind) error {
	want := fmt.Sprintf("want apiVersion %s, kind %s", configAPIVersion, configKindName)
	switch {
	case gvk == nil:
		return fmt.Errorf("not a %s %s document", configAPIVersion, configKindName)
	case gvk.Kind == configKindName:
		return fmt.Errorf("apiVersion %q is not supported (%s)", gvk.GroupVersion().String(), want)
	case gvk.Kind == "ConfigMap":
		return fmt.Errorf("the file is a ConfigMap, not the configuration: pass the file its data key config.conf holds (%s)", want)
	}
	return fmt.Errorf("the file is a %s %s (%s)", gvk.GroupVersion().String(), gvk.Kind, want)
}

// documentKind is the document's own apiVersion and kind (nil without).
func documentKind(data []byte) *schema.GroupVersionKind {
	var meta metav1.TypeMeta
	if yaml.Unmarshal(data, &meta) != nil || meta.Kind == "" {
		return nil
	}
	found := schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind)
	return &found
}

// findBadField decodes the document generically and tries every leaf
// against the field it would land in, to name the field whose value is
// wrong ("ipvs.syncPeriod").
func findBadField(data []byte) (string, error) {
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return "", err
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(jsonData, &doc) != nil {
		return "", nil
	}
	return findBadFieldIn(reflect.TypeFor[v1alpha1.KubeProxyConfiguration](), doc, "")
}

func findBadFieldIn(t reflect.Type, doc map[string]json.RawMessage, prefix string) (string, error) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			if path, err := findBadFieldIn(f.Type, doc, prefix); path != "" {
				return path, err
			}
			continue
		}
		raw, ok := doc[name]
		if !ok {
			continue
		}
		if path, err := checkField(f.Type, raw, prefix+name); path != "" {
			return path, err
		}
	}
	return "", nil
}

// checkField recurses into plain structs and tries to unmarshal anything
// else (durations, quantities, numbers, lists) into its Go type.
func checkField(t reflect.Type, raw json.RawMessage, path string) (string, error) {
	if t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(raw, &sub); err != nil {
			return path, fmt.Errorf("must be an object")
		}
		return findBadFieldIn(t, sub, path+".")
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		return path, fmt.Errorf("invalid value %s: %s", oneLine(string(raw)), describeJSONError(err))
	}
	return "", nil
}

func describeJSONError(err error) string {
	if typeErr, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("want %s, got %s", typeErr.Type, typeErr.Value)
	}
	return oneLine(err.Error())
}

// writeConfigFile writes cfg as YAML (upstream's --write-config-to).
func writeConfigFile(path string, cfg *v1alpha1.KubeProxyConfiguration) error {
	out := cfg.DeepCopy()
	setConfigKind(out)
	data, err := yaml.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode configuration: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write configuration to %s: %w", path, err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
