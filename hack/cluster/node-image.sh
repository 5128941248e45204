#!/usr/bin/env bash
# Step 2 of the node side of `make cluster`: the node VM's extra initramfs, appended to
# hack/vm's base (which stays as make test uses it):
#   containerd, containerd-shim-runc-v2, ctr (Debian's containerd), runc (+ libseccomp),
#   the CNI plugins bridge, host-local, loopback, portmap (containernetworking-plugins),
#   kubelet (hack/cluster/build-node.sh), the overlay module, the guest scripts and configs
#   (hack/cluster/node-guest), and the images every node imports into containerd:
#   registry.k8s.io/pause:3.10.2 (test/cluster/cmd/pause) and cluster.local/busybox:1 (Debian's
#   static busybox, for test pods).
# Writes _output/cluster/node/node-<key>.cpio and _output/cluster/node/images/*.tar and prints
# the cpio's path; a second run with the same inputs only prints it.
source "$(dirname "$0")/node-lib.sh"
shopt -s inherit_errexit
cd "$ROOT"
STEPS=4
START=$SECONDS
progress() { step "node-image [$1/$STEPS] $2 ($((SECONDS - START)) s so far)" >&2; }
DEBS="containerd runc containernetworking-plugins libseccomp2"
CNI_PLUGINS="bridge host-local loopback portmap"
NODE_MODULES="overlay"
KVER=$(vm_kernel_version)
IMAGES="$NODE_OUT/images"

# fetch_debs downloads the Debian packages (once per version) into $NODE_OUT/debs.
fetch_debs() {
	mkdir -p "$NODE_OUT/debs"
	(cd "$NODE_OUT/debs" && apt-get download -qq $DEBS 2>/dev/null) && return
	# No or stale package lists: refresh them (apt serialized with other jobs), then retry.
	flock /tmp/apt.lock apt-get update -qq
	(cd "$NODE_OUT/debs" && apt-get download -qq $DEBS)
}

# deb_file prints the newest downloaded .deb of package $1.
deb_file() { ls -1 "$NODE_OUT/debs/$1"_*.deb | sort -V | tail -n1; }

# build_images writes the pause and busybox image tarballs with hack/image's builder.
build_images() {
	mkdir -p "$IMAGES" "$NODE_OUT/bin"
	go build -trimpath -ldflags='-s -w' -o "$NODE_OUT/bin/pause" ./test/cluster/cmd/pause
	(cd hack/image && GOFLAGS=-mod=readonly go build -trimpath -o "$OUT/bin/image-builder" .)
	"$OUT/bin/image-builder" small -image "$PAUSE_IMAGE" -file "/pause=$NODE_OUT/bin/pause" \
		-entrypoint /pause -oci-dir "$NODE_OUT/oci-pause" -out "$IMAGES/pause.tar" >&2
	# busybox: sh, nc and httpd for test pods (Debian's busybox-static, as in the VM).
	"$OUT/bin/image-builder" small -image cluster.local/busybox:1 -file /bin/busybox=/bin/busybox \
		-link /bin/sh=busybox -entrypoint "/bin/busybox sh" \
		-oci-dir "$NODE_OUT/oci-busybox" -out "$IMAGES/busybox.tar" >&2
}

# cache_key prints what the cpio depends on.
cache_key() {
	{
		echo "format 1 kernel $KVER"
		for p in $DEBS; do basename "$(deb_file "$p")"; done
		cat "$CLUSTER_BIN/.kubelet.stamp" "$0" "$NODE_SRC/node-lib.sh" "$NODE_SRC"/node-guest/*
	} | sha256sum | cut -c1-12
}

# stage_debs extracts the packages and copies the files a node runs into $STAGE.
stage_debs() {
	local debroot="$STAGE.debroot" p f
	mkdir -p "$debroot"
	for p in $DEBS; do dpkg-deb -x "$(deb_file "$p")" "$debroot"; done
	mkdir -p "$STAGE"/usr/{bin,sbin,lib/cni,lib/x86_64-linux-gnu,local/bin}
	for f in containerd containerd-shim-runc-v2 ctr; do cp "$debroot/usr/bin/$f" "$STAGE/usr/bin/"; done
	cp "$debroot/usr/sbin/runc" "$STAGE/usr/sbin/"
	cp -a "$debroot"/usr/lib/x86_64-linux-gnu/libseccomp.so.2* "$STAGE/usr/lib/x86_64-linux-gnu/"
	for f in $CNI_PLUGINS; do cp "$debroot/usr/lib/cni/$f" "$STAGE/usr/lib/cni/"; done
	mkdir -p "$STAGE/etc/node"
	for p in $DEBS; do echo "$p $(dpkg-deb -f "$(deb_file "$p")" Version)"; done >"$STAGE/etc/node/packages"
	rm -rf "$debroot"
}

# stage_modules copies the extra kernel modules and their load order.
stage_modules() {
	local m path
	: >"$STAGE/etc/node/modules.order"
	for m in $NODE_MODULES; do
		path=$(awk -F: -v n="$m" '{b=$1; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); if (b == n) {print $1; exit}}' "/lib/modules/$KVER/modules.dep")
		[ -n "$path" ] || { echo "node-image: module $m not in /lib/modules/$KVER/modules.dep" >&2; return 1; }
		# usr/lib: the base's /lib is a symlink to it, which a cpio directory "lib" would replace.
		mkdir -p "$STAGE/usr/lib/modules/$KVER/$(dirname "$path")"
		cp "/lib/modules/$KVER/$path" "$STAGE/usr/lib/modules/$KVER/$path"
		echo "$path" >>"$STAGE/etc/node/modules.order"
	done
}

stage_node() {
	install -m 0755 "$CLUSTER_BIN/kubelet" "$STAGE/usr/local/bin/kubelet"
	install -m 0755 "$NODE_SRC/node-guest/node-start" "$STAGE/usr/local/bin/node-start"
	mkdir -p "$STAGE/etc/containerd"
	install -m 0644 "$NODE_SRC/node-guest/containerd.toml" "$STAGE/etc/containerd/config.toml"
	install -m 0644 "$NODE_SRC/node-guest/kubelet.yaml" "$STAGE/etc/node/kubelet.yaml"
}

main() {
	mkdir -p "$NODE_OUT"
	exec 9>"$NODE_OUT/.lock"
	flock 9 # concurrent node-up.sh runs build it once
	progress 1 "kubelet"
	"$NODE_SRC/build-node.sh" >&2
	progress 2 "Debian packages: $DEBS"
	fetch_debs
	progress 3 "images: $PAUSE_IMAGE, cluster.local/busybox:1"
	build_images
	local cpio
	cpio="$NODE_OUT/node-$KVER-$(cache_key).cpio"
	if [ -f "$cpio" ]; then
		progress 4 "node initramfs up to date: $cpio"
		echo "$cpio"
		return
	fi
	progress 4 "node initramfs"
	STAGE=$(mktemp -d "$NODE_OUT/stage.XXXXXX")
	trap 'rm -rf "$STAGE" "$STAGE.debroot"' EXIT
	stage_debs
	stage_modules
	stage_node
	rm -f "$NODE_OUT"/node-*.cpio
	(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$cpio.tmp"
	mv "$cpio.tmp" "$cpio"
	step "node-image: $(basename "$cpio"): $(du -m "$cpio" | cut -f1) MiB; $(tr '\n' ' ' <"$STAGE/etc/node/packages")" >&2
	echo "$cpio"
}

main "$@"
