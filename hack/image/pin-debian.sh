#!/usr/bin/env bash
# Rewrites hack/image/debian-packages.txt with the versions the host's apt sources offer
# now (their candidates, in make image's private apt state, refreshed first) for every
# Debian package of ipvs-proxy's image, per architecture of IMAGE_PLATFORMS. Review the
# diff, run make image and hack/test-image.sh, and commit it with a CHANGELOG.md line.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
source "$ROOT/hack/image/debian.sh"
IMAGE_APT_MAX_AGE=0 refresh_lists
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
sed -n '/^#/p' "$DEBIAN_PINS" >"$pins"
for name in $PACKAGES netbase; do
	declare -A by_arch=()
	for platform in $PLATFORMS; do
		arch=${platform#*/} spec=$(apt_spec "$name" "${platform#*/}")
		by_arch[$arch]=$(offered_versions "$spec" | awk '{ print $2 }')
		[ -n "${by_arch[$arch]}" ] || { echo "pin-debian: the host offers no $spec" >&2; exit 1; }
	done
	if [ "$(printf '%s\n' "${by_arch[@]}" | sort -u | wc -l)" = 1 ]; then
		echo "$name=${by_arch[$arch]}" >>"$pins"
	else
		for arch in "${!by_arch[@]}"; do echo "$name:$arch=${by_arch[$arch]}"; done | sort >>"$pins"
	fi
	unset by_arch
done
cp "$pins" "$DEBIAN_PINS"
step "pinned $(grep -vc '^#' "$DEBIAN_PINS") packages in $DEBIAN_PINS"
git --no-pager diff --stat -- "$DEBIAN_PINS" || true
