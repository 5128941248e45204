package addon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	kubeproxyconfig "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/test/cluster/kubeclient"
)

const gate = "IPVSImmediateTermination"

// env is what the test compares the objects with.
type env struct {
	client             kubernetes.Interface
	script             string
	ours, upstream     string // image references
	podCIDR, apiServer string // ClusterConfiguration's podSubnet, https://controlPlaneEndpoint
	serviceCIDR        string
}

func newEnv(t *testing.T) env {
	return env{
		client:      kubeclient.New(t),
		script:      kubeclient.Env(t, "CLUSTER_ADDON_SCRIPT"),
		ours:        kubeclient.Env(t, "OUR_PROXY_IMAGE"),
		upstream:    kubeclient.Env(t, "UPSTREAM_PROXY_IMAGE"),
		podCIDR:     kubeclient.Env(t, "CLUSTER_POD_CIDR"),
		serviceCIDR: kubeclient.Env(t, "CLUSTER_SERVICE_CIDR"),
		apiServer:   "https://" + kubeclient.Env(t, "CP_GUEST_ADDR"),
	}
}

// run runs one step of hack/cluster/addon.sh.
func (e env) run(t *testing.T, step ...string) {
	t.Helper()
	cmd := exec.Command(e.script, step...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", e.script, step, err, out)
	}
	t.Logf("%s %s:\n%s", e.script, step, out)
}

// addon is what kubeadm (and the swap) left in kube-system.
type addon struct {
	ds         *appsv1.DaemonSet
	config     kubeproxyconfig.KubeProxyConfiguration
	kubeconfig string // kubeconfig.conf's server
}

func (e env) read(t *testing.T) addon {
	t.Helper()
	ctx := context.Background()
	ds, err := e.client.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get daemonset kube-system/kube-proxy: %v", err)
	}
	cm, err := e.client.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap kube-system/kube-proxy: %v", err)
	}
	a := addon{ds: ds}
	// Strict: a field kube-proxy's v1alpha1 does not know is an error, as in kube-proxy.
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.conf"]), &a.config); err != nil {
		t.Fatalf("configmap kube-system/kube-proxy: decode config.conf as KubeProxyConfiguration: %v\n%s", err, cm.Data["config.conf"])
	}
	kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig.conf"]))
	if err != nil {
		t.Fatalf("configmap kube-system/kube-proxy: decode kubeconfig.conf: %v", err)
	}
	ctxName := kc.Contexts[kc.CurrentContext]
	if ctxName == nil || kc.Clusters[ctxName.Cluster] == nil {
		t.Fatalf("configmap kube-system/kube-proxy: kubeconfig.conf has no current context's cluster: %+v", kc)
	}
	a.kubeconfig = kc.Clusters[ctxName.Cluster].Server
	return a
}

func (a addon) image() string { return a.ds.Spec.Template.Spec.Containers[0].Image }

// checkKubeadmShape checks what kubeadm renders whatever the image: kubeadm's command
// line, host network, privileged, the ConfigMap and host paths, and the configuration
// the kubeadm file asked for.
func (e env) checkKubeadmShape(t *testing.T, a addon, wantGate bool) {
	t.Helper()
	spec := a.ds.Spec.Template.Spec
	c := spec.Containers[0]
	wantCommand := []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"}
	if !slices.Equal(c.Command, wantCommand) {
		t.Errorf("daemonset kube-proxy command %q; want kubeadm's %q", c.Command, wantCommand)
	}
	if !spec.HostNetwork || c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Errorf("daemonset kube-proxy: hostNetwork %t, securityContext %+v; want host network, privileged", spec.HostNetwork, c.SecurityContext)
	}
	paths := map[string]string{}
	for _, v := range spec.Volumes {
		switch {
		case v.HostPath != nil:
			paths[v.Name] = v.HostPath.Path
		case v.ConfigMap != nil:
			paths[v.Name] = "configmap:" + v.ConfigMap.Name
		}
	}
	wantPaths := map[string]string{"kube-proxy": "configmap:kube-proxy", "xtables-lock": "/run/xtables.lock", "lib-modules": "/lib/modules"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("daemonset kube-proxy volumes %v; want %v", paths, wantPaths)
	}
	cfg := a.config
	if cfg.Kind != "KubeProxyConfiguration" || cfg.APIVersion != kubeproxyconfig.SchemeGroupVersion.String() {
		t.Errorf("config.conf is %s %s; want %s KubeProxyConfiguration", cfg.APIVersion, cfg.Kind, kubeproxyconfig.SchemeGroupVersion)
	}
	if cfg.Mode != "ipvs" || cfg.ClusterCIDR != e.podCIDR || cfg.ClientConnection.Kubeconfig != "/var/lib/kube-proxy/kubeconfig.conf" {
		t.Errorf("config.conf: mode %q, clusterCIDR %q, kubeconfig %q; want ipvs, %q, /var/lib/kube-proxy/kubeconfig.conf",
			cfg.Mode, cfg.ClusterCIDR, cfg.ClientConnection.Kubeconfig, e.podCIDR)
	}
	if got, ok := cfg.FeatureGates[gate]; ok != wantGate || (ok && !got) {
		t.Errorf("config.conf featureGates %v; want %s=true: %t", cfg.FeatureGates, gate, wantGate)
	}
	if a.kubeconfig != e.apiServer {
		t.Errorf("kubeconfig.conf server %q; want the controlPlaneEndpoint %q", a.kubeconfig, e.apiServer)
	}
}

// specWithImage is the DaemonSet's pod template with the container's image set to image
// and the restart annotation dropped: what must be equal across a swap.
func specWithImage(ds *appsv1.DaemonSet, image string) corev1.PodSpec {
	spec := *ds.Spec.Template.Spec.DeepCopy()
	spec.Containers[0].Image = image
	return spec
}

// imageManager is the field manager that owns the container's image.
func imageManager(ds *appsv1.DaemonSet) string {
	for _, m := range ds.ManagedFields {
		if m.FieldsV1 != nil && strings.Contains(m.FieldsV1.GetRawString(), `"f:image"`) {
			return m.Manager
		}
	}
	return ""
}

// TestKubeadmAddonAndSwap runs docs/kubeadm.md's ways on the real kubeadm output, in order:
// way C from a stock addon (overlay, then the gate in the ConfigMap), way A (the kubeadm
// patch, with the gate and without), and a re-render without the patch (what kubeadm upgrade apply and the
// rollback section rely on).
func TestKubeadmAddonAndSwap(t *testing.T) {
	e := newEnv(t)

	e.run(t, "upstream")
	stock := e.read(t)
	if stock.image() != e.upstream {
		t.Fatalf("kubeadm's daemonset kube-proxy image %q; want %q", stock.image(), e.upstream)
	}
	e.checkKubeadmShape(t, stock, false)
	e.checkKubeadmConfig(t)
	e.checkRBAC(t)

	e.run(t, "overlay")
	swapped := e.read(t)
	if swapped.image() != e.ours {
		t.Fatalf("after the overlay daemonset kube-proxy image %q; want ours %q", swapped.image(), e.ours)
	}
	if !reflect.DeepEqual(specWithImage(swapped.ds, e.upstream), specWithImage(stock.ds, e.upstream)) {
		t.Errorf("the overlay changed more than the image:\nbefore %+v\nafter  %+v", stock.ds.Spec.Template.Spec, swapped.ds.Spec.Template.Spec)
	}
	if m := imageManager(swapped.ds); m != "ipvs-proxy" {
		t.Errorf("after the overlay the image's field manager is %q; want ipvs-proxy", m)
	}
	e.checkKubeadmShape(t, swapped, false)

	e.run(t, "gate-on")
	gated := e.read(t)
	e.checkKubeadmShape(t, gated, true)
	if gated.image() != e.ours || gated.ds.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("after gate-on: image %q, template annotations %v; want ours and a rollout restart", gated.image(), gated.ds.Spec.Template.Annotations)
	}

	e.run(t, "patch")
	patched := e.read(t)
	if patched.image() != e.ours {
		t.Fatalf("kubeadm with the patch: daemonset kube-proxy image %q; want ours %q", patched.image(), e.ours)
	}
	e.checkKubeadmShape(t, patched, true)
	if !reflect.DeepEqual(specWithImage(patched.ds, e.upstream), specWithImage(stock.ds, e.upstream)) {
		t.Errorf("the kubeadm patch changed more than the image:\nstock   %+v\npatched %+v", stock.ds.Spec.Template.Spec, patched.ds.Spec.Template.Spec)
	}

	e.run(t, "patch", "no-gate")
	if a := e.read(t); a.image() != e.ours {
		t.Errorf("kubeadm with the patch, no gate: image %q; want ours %q", a.image(), e.ours)
	} else {
		e.checkKubeadmShape(t, a, false)
	}

	e.run(t, "upstream")
	rerendered := e.read(t)
	if rerendered.image() != e.upstream {
		t.Errorf("kubeadm without the patch left image %q; want upstream's %q back", rerendered.image(), e.upstream)
	}
	e.checkKubeadmShape(t, rerendered, false)
}

// checkKubeadmConfig: kubeadm-config holds the ClusterConfiguration as kubeadm init stores it.
func (e env) checkKubeadmConfig(t *testing.T) {
	t.Helper()
	cm, err := e.client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get configmap kube-system/kubeadm-config: %v", err)
	}
	var cc struct {
		Kind              string `json:"kind"`
		KubernetesVersion string `json:"kubernetesVersion"`
		Networking        struct {
			PodSubnet     string `json:"podSubnet"`
			ServiceSubnet string `json:"serviceSubnet"`
		} `json:"networking"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		t.Fatalf("configmap kube-system/kubeadm-config: decode ClusterConfiguration: %v", err)
	}
	got := fmt.Sprintf("%s %s pods %s services %s", cc.Kind, cc.KubernetesVersion, cc.Networking.PodSubnet, cc.Networking.ServiceSubnet)
	want := fmt.Sprintf("ClusterConfiguration v1.37.2 pods %s services %s", e.podCIDR, e.serviceCIDR)
	if got != want {
		t.Errorf("kubeadm-config: %s; want %s", got, want)
	}
}

// checkRBAC: the ServiceAccount and bindings kubeadm's addon phase creates for kube-proxy.
func (e env) checkRBAC(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.client.CoreV1().ServiceAccounts("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err != nil {
		t.Errorf("get serviceaccount kube-system/kube-proxy: %v", err)
	}
	crb, err := e.client.RbacV1().ClusterRoleBindings().Get(ctx, "kubeadm:node-proxier", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get clusterrolebinding kubeadm:node-proxier: %v", err)
	}
	if crb.RoleRef.Name != "system:node-proxier" || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "kube-proxy" {
		t.Errorf("clusterrolebinding kubeadm:node-proxier: role %s, subjects %+v; want system:node-proxier for kube-system/kube-proxy", crb.RoleRef.Name, crb.Subjects)
	}
	if _, err := e.client.RbacV1().RoleBindings("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err != nil {
		t.Errorf("get rolebinding kube-system/kube-proxy (bootstrap tokens read the ConfigMap): %v", err)
	}
}
