# Every target delegates to a script under hack/.
.PHONY: all build unit integration e2e test verify bench demo soak image cluster-nodes-test clean

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

image:
	hack/image.sh

# The cluster's node VMs (real kubelet + containerd; node-a and node-b on one L2): up, checked,
# torn down (hack/cluster/nodes.md).
cluster-nodes-test:
	hack/cluster/node-test.sh

clean:
	rm -rf _output
