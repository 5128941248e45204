#!/usr/bin/env bash
# Step 1 of make conformance: builds, from k8s.io/kubernetes K8S_VERSION in hack/controlplane's
# tools module, into _output/conformance/bin:
#   e2e.test  upstream's end-to-end test binary (go test -c k8s.io/kubernetes/test/e2e)
#   ginkgo    the ginkgo v2 CLI of the same module graph (runs e2e.test's specs in parallel
#             processes; e2e.test alone runs them one at a time)
#   agnhost   k8s.io/kubernetes/test/images/agnhost, static, with agnhost's version
#             (test/images/agnhost/VERSION) stamped like upstream's Makefile does
#   coredns   github.com/coredns/coredns v1.14.6 (kubeadm v1.37.2's), static, from the
#             hack/conformance/coredns module (its dependencies stay out of the tools module)
# A stamp records what they were built from; a second run with the same module, script and Go
# is a no-op. Builds run under nice -n 19: they are long and other work shares the CPUs.
source "$(dirname "$0")/lib.sh"
cd "$CP_DIR"
# The tools module is not vendored; -mod=readonly makes a go.sum that does not match go.mod an error.
export GOFLAGS="-mod=readonly -buildvcs=false"
binaries="e2e.test ginkgo agnhost coredns"
stamp="$CONF_BIN/.stamp"
ldflags=$(k8s_version_ldflags)
key=$(echo "$ldflags $AGNHOST_VERSION" | cat go.mod go.sum "$CONF_DIR/build.sh" "$CONF_DIR"/coredns/go.{mod,sum} - |
	sha256sum | cut -c1-16)-$(go env GOVERSION)

if built_from "$CONF_BIN" "$key" $binaries; then
	step "conformance build: binaries up to date ($key): $CONF_BIN"
	exit 0
fi
mkdir -p "$CONF_BIN"
rm -f "$stamp"
start=$SECONDS
step "conformance build [1/4]: e2e.test $K8S_VERSION (go test -c k8s.io/kubernetes/test/e2e)"
t=$SECONDS
nice -n 19 go test -c -vet=off -trimpath -ldflags "$ldflags" -o "$CONF_BIN/e2e.test" k8s.io/kubernetes/test/e2e
echo "e2e.test built in $((SECONDS - t)) s"
step "conformance build [2/4]: ginkgo CLI (github.com/onsi/ginkgo/v2/ginkgo)"
t=$SECONDS
nice -n 19 go build -trimpath -ldflags "-s -w" -o "$CONF_BIN/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
echo "ginkgo built in $((SECONDS - t)) s"
step "conformance build [3/4]: agnhost $AGNHOST_VERSION (k8s.io/kubernetes/test/images/agnhost, static)"
t=$SECONDS
CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w -X main.Version=$AGNHOST_VERSION" \
	-o "$CONF_BIN/agnhost" k8s.io/kubernetes/test/images/agnhost
echo "agnhost built in $((SECONDS - t)) s"
step "conformance build [4/4]: coredns $COREDNS_VERSION (github.com/coredns/coredns, static)"
t=$SECONDS
(cd "$CONF_DIR/coredns" && CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w" \
	-o "$CONF_BIN/coredns" github.com/coredns/coredns)
echo "coredns built in $((SECONDS - t)) s"
echo "$key" >"$stamp"
step "conformance build: done in $((SECONDS - start)) s: $(cd "$CONF_BIN" && ls -s --block-size=M $binaries | tr '\n' ' ')"
