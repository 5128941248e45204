#!/usr/bin/env bash
# Builds the VM's base initramfs (busybox, kernel modules, iptables/ipset/ipvsadm/conntrack/iproute2/nft
# with their libraries, the guest /init) once per kernel version and script hash, into
# _output/vm/base-<kernel>-<hash>.cpio, and prints that path. Warm calls only print the path.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/hack/vm/lib.sh"
shopt -s inherit_errexit

KVER=$(vm_kernel_version)
MODDIR=/lib/modules/$KVER
BASE="$VM_OUT/base-$KVER-$(vm_base_key "$KVER").cpio"

# Host binaries copied into the guest at the same paths, with their shared libraries.
HOST_BINARIES=(
	/usr/sbin/xtables-legacy-multi /usr/sbin/ipset /usr/sbin/ipvsadm /usr/sbin/conntrack
	/usr/bin/ip /usr/bin/ss /usr/sbin/bridge /usr/sbin/tc
	/usr/sbin/nft # upstream's nftables mode runs it (hack/bench-kernel.sh's upstream-nftables side)
)
XTABLES_LIBDIR=/usr/lib/x86_64-linux-gnu/xtables
IPTABLES_NAMES=(iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore)

# usr_path maps a host path to the guest's merged-/usr layout (/lib/x -> /usr/lib/x).
usr_path() {
	case $1 in
	/usr/*) echo "$1" ;;
	*) echo "/usr$1" ;;
	esac
}

# copy_file copies a host file (following symlinks) to the same merged-/usr path in the stage.
copy_file() {
	local dst="$STAGE$(usr_path "$1")"
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}

make_layout() {
	mkdir -p "$STAGE"/{usr/bin,usr/sbin,usr/lib64,usr/local/bin,proc,sys,dev,run,tmp,root,etc/vm,var,vm}
	local d
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$STAGE/$d"; done
	ln -s ../run "$STAGE/var/run"
	chmod 1777 "$STAGE/tmp"
	chmod 0700 "$STAGE/root"
}

copy_userspace() {
	local f lib
	for f in "${HOST_BINARIES[@]}"; do copy_file "$f"; done
	mkdir -p "$STAGE$XTABLES_LIBDIR"
	cp -L "$XTABLES_LIBDIR"/*.so "$STAGE$XTABLES_LIBDIR/"
	for f in "${IPTABLES_NAMES[@]}"; do
		ln -s xtables-legacy-multi "$STAGE/usr/sbin/$f"
		ln -s xtables-legacy-multi "$STAGE/usr/sbin/${f/tables/tables-legacy}"
	done
	# Shared libraries of the binaries and of the iptables extensions (dlopen()ed, so ldd of the
	# binary alone misses their own dependencies).
	for lib in $(ldd "${HOST_BINARIES[@]}" "$XTABLES_LIBDIR"/*.so 2>/dev/null |
		awk '/=>/ && $3 ~ /^\// {print $3} /^[[:space:]]*\/.*ld-linux/ {print $1}' | sort -u); do
		copy_file "$lib"
	done
	printf '/usr/lib/x86_64-linux-gnu\n/usr/lib\n' >"$STAGE/etc/ld.so.conf"
	ldconfig -r "$STAGE"
	cp -a /etc/iproute2 "$STAGE/etc/"
}

copy_busybox() {
	local applet dir f applets
	cp /usr/bin/busybox "$STAGE/usr/bin/busybox"
	applets=$(busybox --list)
	: >"$STAGE/etc/vm/profile"
	# busybox sh runs its own applet before searching PATH; shell functions win over applets,
	# so jobs source this profile to reach the real ip and tc.
	for f in "${HOST_BINARIES[@]}"; do
		grep -qx "$(basename "$f")" <<<"$applets" &&
			echo "$(basename "$f")() { $f \"\$@\"; }" >>"$STAGE/etc/vm/profile"
	done
	# Applets go where busybox puts them, unless a real binary from the host is already there.
	for applet in $(busybox --list-full); do
		dir=$(dirname "$(usr_path "/$applet")")
		[ -e "$STAGE$dir/$(basename "$applet")" ] || [ -e "$STAGE/usr/bin/$(basename "$applet")" ] ||
			[ -e "$STAGE/usr/sbin/$(basename "$applet")" ] || ln -s /usr/bin/busybox "$STAGE$dir/$(basename "$applet")"
	done
}

write_etc() {
	cp /etc/protocols /etc/services /etc/ethertypes "$STAGE/etc/"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$STAGE/etc/passwd"
	echo 'root:x:0:' >"$STAGE/etc/group"
	printf '127.0.0.1\tlocalhost vm\n::1\tlocalhost ip6-localhost\n' >"$STAGE/etc/hosts"
	printf 'passwd: files\ngroup: files\nhosts: files\nprotocols: files\nservices: files\n' >"$STAGE/etc/nsswitch.conf"
	echo vm >"$STAGE/etc/hostname"
	echo "$KVER" >"$STAGE/etc/vm/kernel-version"
}

# module_paths prints the modules.dep paths of the names in modules.txt.
module_paths() {
	local name norm path
	for name in $(sed 's/#.*//' "$VM_DIR/modules.txt"); do
		norm=${name//-/_}
		path=$(awk -F: -v n="$norm" '{b=$1; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b); if (b == n) {print $1; exit}}' "$MODDIR/modules.dep")
		[ -n "$path" ] || { echo "vm: module $name not in $MODDIR/modules.dep" >&2; return 1; }
		echo "$path"
	done
}

# visit_module appends a module to ORDER after its dependencies (modules.dep lists a module's
# dependencies but not in a load order, so sort them topologically).
visit_module() {
	local path=$1 dep
	[ -z "${SEEN[$path]:-}" ] || return 0
	SEEN[$path]=1
	for dep in ${DEPS[$path]}; do visit_module "$dep"; done
	ORDER+=("$path")
}

copy_modules() {
	local line path paths
	declare -gA DEPS=() SEEN=()
	ORDER=()
	while IFS= read -r line; do DEPS[${line%%:*}]=${line#*:}; done <"$MODDIR/modules.dep"
	paths=$(module_paths)
	for path in $paths; do visit_module "$path"; done
	for path in "${ORDER[@]}"; do
		mkdir -p "$STAGE$MODDIR/$(dirname "$path")"
		cp "$MODDIR/$path" "$STAGE$MODDIR/$path"
	done
	printf '%s\n' "${ORDER[@]}" >"$STAGE/etc/vm/modules.order"
	cp "$MODDIR"/modules.{order,builtin,builtin.modinfo} "$STAGE$MODDIR/"
	depmod -b "$STAGE" "$KVER"
}

copy_guest_scripts() {
	install -m 0755 "$VM_DIR/guest/init" "$STAGE/init"
	install -m 0755 "$VM_DIR/guest/vm-run-tests" "$STAGE/usr/local/bin/vm-run-tests"
}

build() {
	STAGE=$(mktemp -d "$VM_OUT/base-stage.XXXXXX")
	trap 'rm -rf "$STAGE"' EXIT
	make_layout
	copy_userspace
	copy_busybox
	write_etc
	copy_modules
	copy_guest_scripts
	(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$BASE.tmp"
	mv "$BASE.tmp" "$BASE"
	echo "vm: built $(basename "$BASE"): ${#ORDER[@]} modules, $(du -m "$BASE" | cut -f1) MiB" >&2
}

main() {
	exec 9>"$VM_OUT/.base.lock"
	flock 9 # concurrent runs build the base once
	if [ ! -f "$BASE" ]; then
		echo "vm: building the base initramfs for kernel $KVER" >&2
		rm -f "$VM_OUT/base-$KVER-"*.cpio
		build
	fi
	echo "$BASE"
}

main
