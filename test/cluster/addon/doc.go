// Package addon checks the kube-proxy addon that the real kubeadm v1.37.2 makes against
// the host control plane, and the image swap as docs/kubeadm.md tells users, by running
// hack/cluster/addon.sh ($CLUSTER_ADDON_SCRIPT) step by step and reading the objects back:
// the DaemonSet, the kube-proxy ConfigMap (config.conf decoded strictly as a
// KubeProxyConfiguration, kubeconfig.conf as a kubeconfig) and kubeadm-config.
// hack/cluster/test-host.sh runs it.
package addon
