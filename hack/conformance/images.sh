#!/usr/bin/env bash
# Step 2 of make conformance: the images the selected e2e tests run, as OCI tarballs for
# `ctr -n k8s.io images import` on each node (nothing is pulled: kubelet finds them by the exact
# names of k8s.io/kubernetes v1.37.2's test/utils/image/manifest.go), linux/amd64:
#   _output/conformance/images/agnhost.oci.tar  registry.k8s.io/e2e-test-images/agnhost:2.66.1
#       /agnhost (hack/conformance/build.sh: k8s.io/kubernetes/test/images/agnhost v1.37.2,
#       static; entrypoint /agnhost, cmd pause, /agnhost-2 -> agnhost as upstream's) on the tools
#       the tests exec in it, from Debian packages with their libraries: dash (sh), busybox-static (seq,
#       grep, dd, ...), curl, wget, netcat-openbsd (nc), iproute2 (ip, ss)
#   _output/conformance/images/busybox.oci.tar  registry.k8s.io/e2e-test-images/busybox:1.37.0-2
#       Debian's busybox-static with its applets linked in /bin, cmd sh (no entrypoint)
#   _output/conformance/images/nginx.oci.tar    registry.k8s.io/e2e-test-images/nginx:1.27.0-2
#       a stand-in: the EndpointSlice/Endpoints tests only need its pods running; busybox httpd
#       on port 80
#   _output/conformance/images/coredns.oci.tar  registry.k8s.io/coredns/coredns:v1.14.6
#       CoreDNS (hack/conformance/build.sh), entrypoint /coredns, for kubeadm's coredns addon
#       (hack/conformance/dns.sh): the tests reach Services by name
# The pause image (registry.k8s.io/pause:3.10.2) is hack/cluster/images.sh's. All use
# hack/image's builder and hack/image/debian.sh's packaging (private apt state).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# The private apt lists keep make image's platforms (an amd64-only update would drop arm64's).
PLATFORMS=${IMAGE_PLATFORMS:-linux/amd64 linux/arm64}
source "$ROOT/hack/image/debian.sh"
ARCH=amd64
STAGE="$CONF_IMAGES/stage"
# The last commit that changed what the images are made of: a commit elsewhere keeps their
# digests, so node-images.sh does not import them into every node again.
CREATED=$(git -C "$ROOT" log -1 --format=%cI -- hack/conformance hack/image 2>/dev/null || echo 1970-01-01T00:00:00Z)
REVISION=$(git -C "$ROOT" log -1 --format=%H -- hack/conformance hack/image 2>/dev/null || echo unknown)
# What the tests run in agnhost pods (kubectl exec ... /bin/sh -x -c CMD): curl, wget -T, nc -v
# -t/-u -w, ss -ant46, seq, grep, tail, dd, sleep, echo, test; the libraries are the closure
# of curl, wget, nc.openbsd, ip and ss on Debian 12 (the builder fails naming any one missing).
TOOLS="busybox-static dash curl wget netcat-openbsd iproute2"
TOOL_LIBS="libbpf1 libbrotli1 libbsd0 libc6 libcap2 libcom-err2 libcurl4 libelf1 libffi8 libgmp10
 libgnutls30 libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3
 libkrb5support0 libldap-2.5-0 libmd0 libmnl0 libnettle8 libnghttp2-14 libp11-kit0 libpcre2-8-0
 libpsl5 librtmp1 libsasl2-2 libselinux1 libssh2-1 libssl3 libtasn1-6 libtirpc3 libunistring2
 libuuid1 libzstd1 zlib1g"
# Files of those packages in the agnhost image (libraries follow), and busybox applets that the
# real tools replace there. /bin/sh is dash, not busybox: busybox's sh runs its own applet for
# a command it has one for (nc, wget: no -v/-t, no -T), ahead of PATH, whenever it can re-exec
# itself (/proc mounted, as in every container), so the tests' `nc -v -t` got busybox's nc.
TOOL_FILES="bin/busybox bin/dash usr/bin/curl usr/bin/wget bin/nc.openbsd bin/ip bin/ss etc/protocols etc/services"
REPLACED_APPLETS=" sh wget nc ip "

# build_image NAME REFERENCE TITLE STAGE_DIR BUILDER_ARGS...: writes $CONF_IMAGES/NAME.oci.tar.
build_image() {
	local name=$1 ref=$2 title=$3 stage=$4
	shift 4
	step "conformance images: assembling $ref ($name.oci.tar)"
	"$BUILDER" -image "$ref" -platform "linux/$ARCH=$stage" -title "$title" \
		-oci-dir "$CONF_IMAGES/oci/$name" -out "$CONF_IMAGES/$name.oci.tar" \
		-revision "$REVISION" -created "$CREATED" "$@" | tee "$CONF_IMAGES/$name.summary.txt"
}

# applet_links BUSYBOX [SKIP]: -link flags for every applet of BUSYBOX (--list-full: bin/sh,
# usr/bin/seq, ...) pointing at /bin/busybox, but those named in SKIP (" a b ").
applet_links() {
	local busybox=$1 skip=${2:-} p
	"$busybox" --list-full | LC_ALL=C sort | while read -r p; do
		[[ "$skip" == *" ${p##*/} "* || "$p" == bin/busybox ]] && continue
		printf -- '-link\n%s=/bin/busybox\n' "$p"
	done
}

# stage_debian DIR PACKAGES...: DIR/debroot and DIR/packages.txt from those Debian packages
# (hack/image/debian.sh's staging; its iptables-wrapper is left unused).
stage_debian() {
	local stage=$1
	shift
	PACKAGES="$*"
	fetch_debs "$ARCH"
	rm -rf "$stage"
	stage_iptables "$ARCH" "$stage"
}

agnhost_image() {
	local stage="$STAGE/agnhost" f files=() links=()
	stage_debian "$stage" $TOOLS $TOOL_LIBS
	cp "$CONF_BIN/agnhost" "$stage/agnhost"
	for f in $TOOL_FILES; do files+=(-debian-file "$f"); done
	mapfile -t links < <(applet_links "$stage/debroot/bin/busybox" "$REPLACED_APPLETS")
	build_image agnhost "$AGNHOST_IMAGE" "agnhost $AGNHOST_VERSION (k8s.io/kubernetes $K8S_VERSION)" "$stage" \
		-iptables=false "${files[@]}" -binary agnhost=agnhost -link agnhost-2=agnhost \
		-link bin/sh=dash -link bin/nc=nc.openbsd "${links[@]}" -entrypoint /agnhost -cmd pause -version "$AGNHOST_VERSION" \
		-description "agnhost $AGNHOST_VERSION built from k8s.io/kubernetes $K8S_VERSION test/images/agnhost, on Debian's dash, busybox-static, curl, wget, netcat-openbsd and iproute2, for the e2e network tests."
}

busybox_image() {
	local name=$1 ref=$2 entrypoint=$3 cmd=$4 description=$5 stage="$STAGE/$1" links=()
	stage_debian "$stage" busybox-static
	cp "$stage/debroot/bin/busybox" "$stage/busybox"
	mapfile -t links < <(applet_links "$stage/busybox")
	build_image "$name" "$ref" "$name (Debian busybox-static)" "$stage" -iptables=false \
		-binary bin/busybox=busybox "${links[@]}" -entrypoint "$entrypoint" -cmd "$cmd" \
		-version "$(sed -n 's/^busybox-static //p' "$stage/packages.txt")" -description "$description"
}

coredns_image() {
	local stage="$STAGE/coredns"
	rm -rf "$stage" && mkdir -p "$stage"
	cp "$CONF_BIN/coredns" "$stage/coredns"
	build_image coredns "$COREDNS_IMAGE" "CoreDNS $COREDNS_VERSION" "$stage" -iptables=false \
		-binary coredns=coredns -entrypoint /coredns -version "$COREDNS_VERSION" \
		-description "CoreDNS $COREDNS_VERSION (github.com/coredns/coredns, static), kubeadm $K8S_VERSION's cluster DNS."
}

main() {
	need_debian_tools
	local start=$SECONDS
	mkdir -p "$CONF_IMAGES" "$OUT/bin"
	"$CONF_DIR/build.sh"
	BUILDER=$(image_builder)
	refresh_lists
	agnhost_image
	busybox_image busybox "$BUSYBOX_IMAGE" "" sh \
		"Debian's busybox-static with its applets, for the e2e tests' busybox pods."
	busybox_image nginx "$NGINX_IMAGE" "/bin/busybox httpd -f -p 80 -h /tmp" "" \
		"Stand-in for the e2e nginx image (pods that only need to run): Debian's busybox httpd on port 80."
	coredns_image
	rm -rf "$STAGE"
	step "conformance images: checking them (hack/image/imagetest: names, entrypoints, libraries, the tests' commands in a chroot)"
	(cd "$ROOT/hack/image" && CONFORMANCE_IMAGES="$CONF_IMAGES" IMAGE_TARBALL="$CONF_IMAGES/agnhost.oci.tar" \
		IMAGE_PLATFORMS=linux/$ARCH GOFLAGS=-mod=readonly go test -count=1 \
		-run 'TestConformanceImages|TestEveryELFFindsItsLibraries' ./imagetest)
	step "conformance images: done in $((SECONDS - start)) s"
	ls -l "$CONF_IMAGES"/*.oci.tar
}

main "$@"
