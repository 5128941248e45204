// Package deploytest checks the manifests under deploy/ against a real
// kube-apiserver (hack/controlplane, $CP_KUBECONFIG) with server-side
// dry-run and strict field validation: the kustomization in deploy/ as
// rendered by kustomize, the kubeadm overlay applied (server-side apply)
// to the DaemonSet kubeadm creates, and the kubeadm patch applied the way
// kubeadm applies it (strategic merge). It also runs the ConfigMap's
// KubeProxyConfiguration through kube-proxy itself ($KUBE_PROXY_BIN) and,
// when $UPSTREAM_KUBE_PROXY_BIN is set, shows that upstream's kube-proxy
// refuses the feature gate (why docs/kubeadm.md orders rollback steps).
//
// hack/test-deploy.sh builds and starts the control plane and runs it.
package deploytest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const fieldManager = "ipvs-proxy"

func deployDir() string {
	if d := os.Getenv("DEPLOY_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "deploy")
}

// render runs kustomize on a directory, as kubectl apply -k does.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objects []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		// Through JSON: unstructured wants JSON's number types (int64, float64).
		data, err := r.MarshalJSON()
		obj := &unstructured.Unstructured{}
		if err == nil {
			err = obj.UnmarshalJSON(data)
		}
		if err != nil {
			t.Fatalf("kustomize build %s: resource %s: %v", dir, r.CurId(), err)
		}
		objects = append(objects, obj)
	}
	return objects
}

// cluster is a dynamic client and a REST mapper for the test API server.
type cluster struct {
	client dynamic.Interface
	mapper meta.RESTMapper
}

func connect(t *testing.T) *cluster {
	t.Helper()
	path := os.Getenv("CP_KUBECONFIG")
	if path == "" {
		t.Skip("CP_KUBECONFIG is not set; run hack/test-deploy.sh")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig %s: %v", path, err)
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("dynamic client for %s: %v", cfg.Host, err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatalf("discovery client for %s: %v", cfg.Host, err)
	}
	return &cluster{client: client, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))}
}

// resource returns the client for an object's kind and namespace.
func (c *cluster) resource(t *testing.T, obj *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s %s: no such resource on the server: %v", gvk, obj.GetName(), err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.client.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	}
	return c.client.Resource(mapping.Resource)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func describe(obj *unstructured.Unstructured) string {
	return obj.GetKind() + " " + strings.TrimPrefix(obj.GetNamespace()+"/"+obj.GetName(), "/")
}

// TestManifestsDryRun creates every object of deploy/ with server-side
// dry-run and strict field validation: schema, defaults, admission (the
// priority class, the ClusterRole reference) all checked by the server.
func TestManifestsDryRun(t *testing.T) {
	c := connect(t)
	objects := render(t, deployDir())
	var kinds []string
	for _, obj := range objects {
		kinds = append(kinds, obj.GetKind())
		_, err := createUnlessPrivilegedRefused(t, c, obj, []string{metav1.DryRunAll})
		if err != nil {
			t.Errorf("dry-run create %s: %v", describe(obj), err)
			continue
		}
		t.Logf("dry-run create %s: accepted", describe(obj))
	}
	want := []string{"ServiceAccount", "ClusterRoleBinding", "ConfigMap", "DaemonSet"}
	for _, k := range want {
		if !strings.Contains(strings.Join(kinds, " "), k) {
			t.Errorf("deploy/ renders %v; want a %s", kinds, k)
		}
	}
}

// createUnlessPrivilegedRefused creates obj (strict field validation). An
// API server started without --allow-privileged=true (kubeadm sets it;
// hack/controlplane does not) refuses every privileged container; then the
// object is created again without securityContext.privileged, so that all
// the rest is still checked by the server, and the test says so.
func createUnlessPrivilegedRefused(t *testing.T, c *cluster, obj *unstructured.Unstructured, dryRun []string) (*unstructured.Unstructured, error) {
	t.Helper()
	opts := metav1.CreateOptions{DryRun: dryRun, FieldValidation: metav1.FieldValidationStrict}
	created, err := c.resource(t, obj).Create(ctx(t), obj, opts)
	if err == nil || !strings.Contains(err.Error(), "privileged: Forbidden: disallowed by cluster policy") {
		return created, err
	}
	t.Logf("%s: the API server runs without --allow-privileged=true; checking it without securityContext.privileged", describe(obj))
	stripped := obj.DeepCopy()
	containers, _, _ := unstructured.NestedSlice(stripped.Object, "spec", "template", "spec", "containers")
	for _, container := range containers {
		if sc, ok := container.(map[string]any)["securityContext"].(map[string]any); ok {
			delete(sc, "privileged")
		}
	}
	if err := unstructured.SetNestedSlice(stripped.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return nil, err
	}
	return c.resource(t, obj).Create(ctx(t), stripped, opts)
}

// kubeadmDaemonSet creates the DaemonSet kubeadm would (deleted at the end).
func kubeadmDaemonSet(t *testing.T, c *cluster) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "kubeadm-kube-proxy-daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	jsonData, err := yaml.YAMLToJSON(data)
	if err == nil {
		err = obj.UnmarshalJSON(jsonData)
	}
	if err != nil {
		t.Fatalf("parse kubeadm DaemonSet: %v", err)
	}
	res := c.resource(t, obj)
	created, err := createUnlessPrivilegedRefused(t, c, obj, nil)
	if err != nil {
		t.Fatalf("create the kubeadm-like %s: %v", describe(obj), err)
	}
	t.Cleanup(func() {
		_ = res.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{})
	})
	return created
}

// containerImage reads spec.template.spec.containers[0].image.
func containerImage(t *testing.T, ds *unstructured.Unstructured) string {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", describe(ds), len(containers))
	}
	image, _ := containers[0].(map[string]any)["image"].(string)
	return image
}

// assertOnlyImageChanged compares two DaemonSets' specs with the image of
// the second set back to the first's.
func assertOnlyImageChanged(t *testing.T, before, after *unstructured.Unstructured, wantImage string) {
	t.Helper()
	if got := containerImage(t, after); got != wantImage {
		t.Errorf("image after = %q, want %q", got, wantImage)
	}
	specBefore, _, _ := unstructured.NestedMap(before.Object, "spec")
	specAfter, _, _ := unstructured.NestedMap(after.Object, "spec")
	containers, _, _ := unstructured.NestedSlice(specAfter, "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = containerImage(t, before)
	if err := unstructured.SetNestedSlice(specAfter, containers, "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(specBefore, specAfter) {
		b, _ := yaml.Marshal(specBefore)
		a, _ := yaml.Marshal(specAfter)
		t.Errorf("more than the image changed:\nbefore:\n%s\nafter (image reset):\n%s", b, a)
	}
}

// overlayImage is the image the overlay's kustomization sets (newName:newTag, or
// newName@digest in make release's copy).
func overlayImage(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Images []struct{ NewName, NewTag, Digest string } `json:"images"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil || len(k.Images) != 1 {
		t.Fatalf("%s/kustomization.yaml images = %+v, %v; want one", dir, k.Images, err)
	}
	if k.Images[0].Digest != "" {
		return k.Images[0].NewName + "@" + k.Images[0].Digest
	}
	return k.Images[0].NewName + ":" + k.Images[0].NewTag
}

// TestKubeadmOverlay renders deploy/kubeadm-overlay and server-side
// applies it (dry-run, forced, as the docs say) onto a kubeadm DaemonSet.
func TestKubeadmOverlay(t *testing.T) {
	c := connect(t)
	before := kubeadmDaemonSet(t, c)
	dir := filepath.Join(deployDir(), "kubeadm-overlay")
	objects := render(t, dir)
	if len(objects) != 1 || objects[0].GetKind() != "DaemonSet" {
		t.Fatalf("the overlay renders %d objects; want the one DaemonSet", len(objects))
	}
	patch, err := objects[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.resource(t, objects[0]).Patch(ctx(t), objects[0].GetName(), types.ApplyPatchType, patch, metav1.PatchOptions{
		DryRun: []string{metav1.DryRunAll}, FieldManager: fieldManager, Force: ptr(true),
		FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		t.Fatalf("server-side apply (dry-run) of the overlay onto %s: %v", describe(before), err)
	}
	assertOnlyImageChanged(t, before, after, overlayImage(t, dir))
}

// TestOverlayCreatesNothing: the overlay is no DaemonSet of its own; on a
// cluster without kubeadm's, applying it fails instead of creating a broken one.
func TestOverlayCreatesNothing(t *testing.T) {
	c := connect(t)
	objects := render(t, filepath.Join(deployDir(), "kubeadm-overlay"))
	patch, err := objects[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.resource(t, objects[0]).Patch(ctx(t), objects[0].GetName(), types.ApplyPatchType, patch, metav1.PatchOptions{
		DryRun: []string{metav1.DryRunAll}, FieldManager: fieldManager, Force: ptr(true),
	})
	if err == nil {
		t.Error("applying the overlay without a kube-proxy DaemonSet succeeded; want a validation error")
	}
}

// TestKubeadmPatch applies deploy/kubeadm-patches/kubeproxydaemonset+strategic.yaml
// as kubeadm does (strategic merge onto the DaemonSet it renders: the same
// template in init, upgrade apply and an HA control plane's last upgrade
// node, see TestUpgradeDocsPatchEveryRenderingCommand).
func TestKubeadmPatch(t *testing.T) {
	c := connect(t)
	before := kubeadmDaemonSet(t, c)
	file := filepath.Join(deployDir(), "kubeadm-patches", "kubeproxydaemonset+strategic.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var p struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct{ Image string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil || len(p.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container with an image: %v", file, err)
	}
	after, err := c.resource(t, before).Patch(ctx(t), before.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{
		DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		t.Fatalf("strategic merge (dry-run) of %s onto %s: %v", file, describe(before), err)
	}
	assertOnlyImageChanged(t, before, after, p.Spec.Template.Spec.Containers[0].Image)
}

func ptr[T any](v T) *T { return &v }

// configFiles writes the ConfigMap's files into a directory, as the
// DaemonSet mounts them at /var/lib/kube-proxy.
func configFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, obj := range render(t, deployDir()) {
		if obj.GetKind() != "ConfigMap" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(obj.Object, "data")
		for name, content := range data {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Fatal("deploy/ has no ConfigMap")
	return ""
}

// writeConfig runs kube-proxy --config=DIR/config.conf --write-config-to:
// it loads, defaults and validates the file (feature gates included) and
// writes the result, or fails.
func writeConfig(bin, dir string) ([]byte, error) {
	out := filepath.Join(dir, "written.yaml")
	cmd := exec.Command(bin, "--config="+filepath.Join(dir, "config.conf"), "--write-config-to="+out, "--hostname-override=node-1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stderr.Bytes(), err
	}
	return os.ReadFile(out)
}

func TestConfigAcceptedByKubeProxy(t *testing.T) {
	bin := os.Getenv("KUBE_PROXY_BIN")
	if bin == "" {
		t.Skip("KUBE_PROXY_BIN is not set; run hack/test-deploy.sh")
	}
	written, err := writeConfig(bin, configFiles(t))
	if err != nil {
		t.Fatalf("kube-proxy refuses deploy/configmap.yaml's config.conf: %v\n%s", err, written)
	}
	var cfg struct {
		Mode         string          `json:"mode"`
		FeatureGates map[string]bool `json:"featureGates"`
	}
	if err := yaml.Unmarshal(written, &cfg); err != nil {
		t.Fatalf("parse the written configuration: %v", err)
	}
	if cfg.Mode != "ipvs" || !cfg.FeatureGates["IPVSImmediateTermination"] {
		t.Errorf("written configuration: mode %q, featureGates %v; want ipvs with IPVSImmediateTermination", cfg.Mode, cfg.FeatureGates)
	}
}

// TestUpstreamRefusesTheGate: upstream kube-proxy exits on the unknown
// gate, so rolling back to its image needs the gate removed first.
func TestUpstreamRefusesTheGate(t *testing.T) {
	bin := os.Getenv("UPSTREAM_KUBE_PROXY_BIN")
	if bin == "" {
		t.Skip("UPSTREAM_KUBE_PROXY_BIN is not set (hack/controlplane builds kube-proxy-upstream)")
	}
	out, err := writeConfig(bin, configFiles(t))
	if err == nil {
		t.Fatal("upstream kube-proxy accepted featureGates.IPVSImmediateTermination; docs/kubeadm.md says it refuses it")
	}
	if !strings.Contains(string(out), "IPVSImmediateTermination") {
		t.Errorf("upstream kube-proxy failed without naming the gate: %v\n%s", err, out)
	}
}
