#!/usr/bin/env bash
# Builds the "legacy-kernel" IPVS modules: Debian's own IPVS source for the kernel the
# VM boots, with pre-5.9.patch applied (see README.md), out of tree against
# that kernel's headers. Output: _output/legacy-ipvs/<kernel-version>/*.ko, plus a stamp
# so that a second run is a no-op.
#   LEGACY_KERNEL_VERSION=6.1.0-56-amd64  overrides the kernel (default: the one that
#                                         linux-image-amd64 depends on).
source "$(dirname "$0")/../lib.sh"
LEGACY_DIR="$ROOT/hack/legacy-ipvs"
PATCH="$LEGACY_DIR/pre-5.9.patch"
IPVS_SUBDIR=net/netfilter/ipvs

# kernel_version prints the kernel version linux-image-amd64 installs (never `uname -r`:
# the host runs a different kernel than the VM).
kernel_version() {
	if [ -n "${LEGACY_KERNEL_VERSION:-}" ]; then echo "$LEGACY_KERNEL_VERSION"; return; fi
	local dep
	dep=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null) ||
		{ echo "legacy-ipvs: linux-image-amd64 is not installed (set LEGACY_KERNEL_VERSION)" >&2; return 1; }
	dep=${dep%% *}
	echo "${dep#linux-image-}"
}

# apt_install installs the given package specs when dpkg does not have them in that version.
apt_install() {
	local spec name have missing=()
	for spec in "$@"; do
		name=${spec%%=*}
		have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
		if [ "$name" = "$spec" ]; then
			[[ "$have" == "install ok installed "* ]] && continue
		else
			[ "$have" = "install ok installed ${spec#*=}" ] && continue
		fi
		missing+=("$spec")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	step "apt-get install ${missing[*]}"
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"
}

# headers_dir prints the kernel build directory of version $1.
headers_dir() {
	local d
	for d in "/lib/modules/$1/build" "/usr/src/linux-headers-$1"; do
		[ -f "$d/Makefile" ] && { echo "$d"; return; }
	done
	echo "legacy-ipvs: no kernel headers for $1 (/lib/modules/$1/build, /usr/src/linux-headers-$1)" >&2
	return 1
}

# extract_ipvs unpacks only net/netfilter/ipvs of source tarball $1 into directory $2.
extract_ipvs() {
	local tarball=$1 dest=$2 top
	top=$(basename "$tarball" .tar.xz)
	rm -rf "$dest" && mkdir -p "$dest"
	tar -xJf "$tarball" -C "$dest" --strip-components=1 "$top/$IPVS_SUBDIR"
}

# apply_patch applies the legacy patch in source tree $1 and checks that it took.
apply_patch() {
	patch -d "$1" -p1 --forward --no-backup-if-mismatch --quiet <"$PATCH" ||
		{ echo "legacy-ipvs: $PATCH does not apply to this kernel's IPVS source" >&2; return 1; }
	local file n
	for file in ip_vs_core.c:2 ip_vs_ctl.c:1; do
		n=$(grep -c 'ipvs-proxy legacy profile, [0-9] of 3' "$1/$IPVS_SUBDIR/${file%:*}" || true)
		[ "$n" = "${file#*:}" ] ||
			{ echo "legacy-ipvs: ${file%:*} has $n of the patch's ${file#*:} changes" >&2; return 1; }
	done
}

# check_vermagic fails unless every module in $1 has the vermagic of the stock ip_vs.ko of kernel $2.
check_vermagic() {
	local dir=$1 kver=$2 stock want ko got
	stock=$(find "/lib/modules/$kver/kernel/$IPVS_SUBDIR" -name 'ip_vs.ko*' | head -n1)
	want=$(modinfo -F vermagic "$stock")
	for ko in "$dir"/*.ko; do
		got=$(modinfo -F vermagic "$ko")
		[ "$got" = "$want" ] || { echo "legacy-ipvs: $ko vermagic '$got' != stock '$want'" >&2; return 1; }
	done
	echo "vermagic of all modules: $want (same as $stock)"
}

# make_cpio packs the modules in $1 as $1/modules.cpio at the module path of kernel $2.
make_cpio() {
	local dir=$1 kver=$2 stage modpath
	# The real path (usr/lib/... on merged-/usr Debian): an archive entry "lib" would
	# replace the initramfs's /lib -> usr/lib symlink by an empty directory.
	modpath=$(realpath "/lib/modules/$kver/kernel/$IPVS_SUBDIR")
	modpath=${modpath#/}
	stage=$(mktemp -d)
	mkdir -p "$stage/$modpath"
	cp "$dir"/*.ko "$stage/$modpath/"
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$dir/modules.cpio"
	rm -rf "$stage"
}

main() {
	local kver pkgver srcpkg dest stamp key build hdr start=$SECONDS t
	kver=$(kernel_version)
	step "kernel $kver"
	[ -d "/lib/modules/$kver/kernel/$IPVS_SUBDIR" ] ||
		{ echo "legacy-ipvs: /lib/modules/$kver has no IPVS modules; install linux-image-$kver" >&2; return 1; }
	pkgver=$(dpkg-query -W -f='${Version}' "linux-image-$kver")
	srcpkg=linux-source-$(echo "$kver" | cut -d. -f1,2)
	dest="$OUT/legacy-ipvs/$kver"
	stamp="$dest/.stamp"
	key="$kver $pkgver $(cat "$PATCH" "$LEGACY_DIR/build.sh" | sha256sum | cut -c1-16)"
	if [ -f "$dest/modules.cpio" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
		step "legacy IPVS modules up to date: $dest"
		return
	fi
	# The source must be the very version of the image: the headers' include/net/ip_vs.h
	# and the extracted .c files have to agree.
	apt_install "$srcpkg=$pkgver" "linux-headers-$kver=$pkgver" make patch xz-utils kmod binutils cpio
	hdr=$(headers_dir "$kver")
	build="$OUT/legacy-ipvs/build-$kver"
	t=$SECONDS
	step "extracting $IPVS_SUBDIR from /usr/src/$srcpkg.tar.xz"
	extract_ipvs "/usr/src/$srcpkg.tar.xz" "$build"
	step "extracted in $((SECONDS - t)) s; applying $(basename "$PATCH")"
	apply_patch "$build"
	t=$SECONDS
	step "make -C $hdr M=$build/$IPVS_SUBDIR modules"
	make -C "$hdr" M="$build/$IPVS_SUBDIR" -j"$(nproc)" modules >"$build/make.log" 2>&1 ||
		{ tail -n 30 "$build/make.log" >&2; echo "legacy-ipvs: build failed, log: $build/make.log" >&2; return 1; }
	step "built in $((SECONDS - t)) s; stripping into $dest"
	rm -rf "$dest" && mkdir -p "$dest"
	cp "$build/$IPVS_SUBDIR"/*.ko "$dest/"
	strip --strip-debug "$dest"/*.ko
	check_vermagic "$dest" "$kver"
	make_cpio "$dest" "$kver"
	echo "$key" >"$stamp"
	step "done in $((SECONDS - start)) s: $(ls "$dest" | tr '\n' ' ')"
}

main "$@"
