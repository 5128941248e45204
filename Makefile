# Every target delegates to a script under hack/.
.PHONY: all build unit integration e2e test verify bench demo soak image clean cluster cluster-down cluster-demo cluster-host cluster-host-down cluster-host-test cluster-nodes-test

all: build

build:
	hack/build.sh

unit:
	hack/unit.sh

integration:
	hack/integration.sh

e2e:
	hack/e2e.sh test

test:
	hack/test.sh

verify:
	hack/verify.sh

bench:
	hack/bench.sh

demo:
	hack/demo.sh

# 30 minutes of random endpoint churn under load in the VM (not in make test).
soak:
	hack/e2e.sh soak

# IMAGE is the image reference (default ipvs-proxy/kube-proxy:dev, set in hack/lib.sh), the one
# variable naming ipvs-proxy's image: make image records it in the tarball, make release pins it
# by digest in the manifests it writes (docs/release.md), make cluster imports it:
#   make release IMAGE=registry.example.com/net/kube-proxy:v0.1.0
image:
	hack/image.sh

.PHONY: release
# A release from a clean tree into _output/release/: binaries (amd64, arm64), the image
# tarball, its SBOMs and digest, deploy/ pinned by digest, SHA256SUMS (docs/release.md).
release:
	hack/release.sh

# The real cluster (hack/cluster/README.md): control plane on loopback, node VMs node-a and
# node-b (kubelet + containerd), kubeadm's kube-proxy addon with our image and the gate; left
# running. CLUSTER_ADDON="upstream" or "patch no-gate" picks another addon.
cluster:
	hack/cluster/up.sh $(CLUSTER_ADDON)

cluster-down:
	hack/cluster/down.sh

# Scenarios 1-4 on the real cluster (brought up if not up, torn down after), with upstream's
# rows; report and plot in _output/cluster/ (hack/cluster/README.md).
cluster-demo:
	hack/cluster/demo.sh

# The host half of the real cluster (hack/cluster/README.md): build, images, control plane
# on loopback with kube-controller-manager and kube-scheduler, kubeadm's kube-proxy addon.
cluster-host:
	hack/cluster/host-up.sh

cluster-host-down:
	hack/cluster/controlplane-down.sh

# Its tests on a control plane of their own (no VM).
cluster-host-test:
	hack/cluster/test-host.sh

# The cluster's node VMs (real kubelet + containerd; node-a and node-b on one L2): up, checked,
# torn down (hack/cluster/nodes.md).
cluster-nodes-test:
	hack/cluster/node-test.sh

clean:
	rm -rf _output

# Upstream's Service e2e tests, three runs (upstream kube-proxy, ours gate off, gate on) on the
# running cluster (hack/conformance/README.md); conformance-build makes e2e.test and the images
# only; conformance-list prints the selected tests (a dry run, no cluster needed).
.PHONY: conformance conformance-build conformance-list
conformance:
	hack/conformance/conformance.sh

conformance-build:
	hack/conformance/build.sh && hack/conformance/images.sh

conformance-list:
	CONFORMANCE_DRY_RUN=1 hack/conformance/run.sh $${KUBECONFIG:-/dev/null} list && cat _output/conformance/list/selected.txt
