#!/usr/bin/env bash
# Builds the container image (hack/image.sh) and tests it (hack/image/imagetest): layout and
# docker manifest.json, entrypoint, user, labels (the version stamp), platforms, the SBOM,
# every ELF's libraries, and as root kube-proxy's and ipvs-doctor's --version, both iptables
# backends and the backend-picking wrapper in a chroot of the amd64 root file system; plus
# the builder's, the Debian pinning's and the wrapper's unit tests.
source "$(dirname "$0")/lib.sh"
# The stamp, exported: the image is built with it and the tests expect it (labels, --version).
version_vars
"$ROOT/hack/image.sh"
step "image tests"
cd "$ROOT/hack/image"
IMAGE_TARBALL="$OUT/image/kube-proxy.oci.tar" IMAGE_PLATFORMS="${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}" \
	GOFLAGS=-mod=readonly go test -count=1 "$@" . ./iptables-wrapper ./imagetest
