#!/usr/bin/env bash
# make release: a release's artifacts in _output/release/ (docs/release.md), from a clean
# tree (RELEASE_ALLOW_DIRTY=1 to try it on a dirty one), for linux/amd64 and linux/arm64:
#   kube-proxy-linux-ARCH, ipvs-doctor-linux-ARCH  the image's static binaries (stamped)
#   kube-proxy.oci.tar                 the multi-platform OCI image tarball (make image)
#   kube-proxy.linux-ARCH.spdx.json    each platform's SBOM (SPDX 2.3; also in the image)
#   image.txt                          IMAGE, the index digest, and IMAGE pinned by digest
#   deploy/                            deploy/ with every image reference pinned by digest:
#                                      kubectl apply -k, the kubeadm patch, the overlay
#   CHANGELOG.md, LICENSE
#   SHA256SUMS                         sha256sum of every file above (sha256sum -c SHA256SUMS)
# then checks them (hack/image/imagetest's TestRelease*; installs Debian's skopeo for that).
#
# IMAGE is the reference the tarball will be pushed to (hack/lib.sh), e.g.
#   IMAGE=registry.example.com/net/kube-proxy:v0.1.0 make release
# Left at its default, the release is named ipvs-proxy/kube-proxy:<version>.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RELEASE="$OUT/release"
version_vars
if [ "$GIT_TREE_STATE" != clean ] && [ "${RELEASE_ALLOW_DIRTY:-}" != 1 ]; then
	echo "release: the work tree has uncommitted changes ($IPVS_PROXY_VERSION); commit, or RELEASE_ALLOW_DIRTY=1" >&2
	exit 1
fi
[ "$IMAGE" != ipvs-proxy/kube-proxy:dev ] || IMAGE=ipvs-proxy/kube-proxy:$IPVS_PROXY_VERSION
case $IPVS_PROXY_VERSION in
v0.0.0-*|*-g*) echo "release: note: $IPVS_PROXY_VERSION is not a tag (git tag -a vX.Y.Z first for a real release)" >&2 ;;
esac
export IMAGE

# need_skopeo installs Debian's skopeo, which the release checks run (docs/release.md's commands).
need_skopeo() {
	command -v skopeo >/dev/null && return
	step "release: installing skopeo (Debian) for the checks"
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends skopeo >/dev/null
}

main() {
	local start=$SECONDS arch digest pinned
	[[ $IMAGE != *@* ]] || { echo "release: IMAGE=$IMAGE: give a tag, not a digest" >&2; return 1; }
	rm -rf "$RELEASE"
	mkdir -p "$RELEASE"
	step "release $IPVS_PROXY_VERSION: image $IMAGE"
	IMAGE_PLATFORMS="linux/amd64 linux/arm64" "$ROOT/hack/image.sh"
	for arch in amd64 arm64; do
		cp "$OUT/image/stage/$arch/kube-proxy" "$RELEASE/kube-proxy-linux-$arch"
		cp "$OUT/image/stage/$arch/ipvs-doctor" "$RELEASE/ipvs-doctor-linux-$arch"
	done
	cp "$OUT/image/kube-proxy.oci.tar" "$OUT"/image/kube-proxy.linux-*.spdx.json CHANGELOG.md LICENSE "$RELEASE/"
	digest=$(sed -n 's/^index digest //p' "$OUT/image/summary.txt")
	# repository@digest: IMAGE without its tag (a registry's :port is not one)
	pinned=$IMAGE
	[[ "${IMAGE##*/}" != *:* ]] || pinned=${IMAGE%:*}
	pinned+="@$digest"
	printf 'image %s\ndigest %s\npinned %s\n' "$IMAGE" "$digest" "$pinned" >"$RELEASE/image.txt"
	step "release: deploy/ pinned to $pinned"
	pin_manifests "$pinned"
	(cd "$RELEASE" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
	need_skopeo
	step "release: checking $RELEASE (hack/image/imagetest TestRelease*: checksums, image, binaries, manifests, a push with crane's code and with skopeo to a registry on loopback)"
	(cd "$ROOT/hack/image" && RELEASE_DIR="$RELEASE" GOFLAGS=-mod=readonly go test -count=1 -run 'TestRelease' ./imagetest)
	step "release $IPVS_PROXY_VERSION done in $((SECONDS - start)) s"
	cat "$RELEASE/image.txt"
	ls -l "$RELEASE"
}

# pin_manifests PINNED copies deploy/ with every reference to ipvs-proxy/kube-proxy:dev
# replaced by PINNED (repository@sha256:...), and the overlay's images: entry set to it.
pin_manifests() {
	local pinned=$1 f
	cp -r deploy "$RELEASE/deploy"
	while IFS= read -r f; do
		sed -i "s|image: ipvs-proxy/kube-proxy:dev|image: $pinned|" "$f"
	done < <(find "$RELEASE/deploy" -name '*.yaml')
	sed -i -e "s|^  newName: ipvs-proxy/kube-proxy$|  newName: ${pinned%@*}|" -e "s|^  newTag: dev$|  digest: ${pinned#*@}|" \
		"$RELEASE/deploy/kubeadm-overlay/kustomization.yaml"
	if grep -rn 'kube-proxy:dev\|newTag: dev' "$RELEASE/deploy"; then
		echo "release: deploy/ still names the :dev image (above); pin_manifests does not know that form" >&2
		return 1
	fi
}

main "$@"
