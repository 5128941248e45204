# Settings shared by the hack/conformance scripts; source it, do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"
CONF_DIR="$ROOT/hack/conformance"
CONF_OUT="$OUT/conformance"
CONF_BIN="$CONF_OUT/bin"
CONF_IMAGES="$CONF_OUT/images"
# Finished runs kept in the repository (keep.sh), read by conformance.sh's report.
CONF_KEPT="$ROOT/test/conformance/results"

# The images upstream's e2e framework v1.37.2 runs in the selected tests, by the exact names
# of its test/utils/image/manifest.go (so no KUBE_TEST_REPO_LIST is needed), and the pause
# image kubelet's sandboxes use (hack/cluster/images.sh builds that one).
AGNHOST_VERSION=2.66.1
AGNHOST_IMAGE=registry.k8s.io/e2e-test-images/agnhost:$AGNHOST_VERSION
BUSYBOX_IMAGE=registry.k8s.io/e2e-test-images/busybox:1.37.0-2
# The endpoint tests' pods only need to run: Debian's busybox httpd on port 80 stands in.
NGINX_IMAGE=registry.k8s.io/e2e-test-images/nginx:1.27.0-2
# Cluster DNS: the CoreDNS kubeadm v1.37.2 deploys (cmd/kubeadm/app/constants.CoreDNSVersion),
# built from the Go module proxy in hack/conformance/coredns (a module of its own).
COREDNS_VERSION=v1.14.6
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:$COREDNS_VERSION
