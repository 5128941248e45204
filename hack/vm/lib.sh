# Settings shared by the VM scripts; source it after hack/lib.sh.
VM_DIR="$ROOT/hack/vm"
VM_OUT="$OUT/vm"
mkdir -p "$VM_OUT"

# vm_kernel_version prints the kernel the VM boots: $VM_KERNEL_VERSION, or the newest
# /boot/vmlinuz-* that has a matching /lib/modules directory.
vm_kernel_version() {
	if [ -n "${VM_KERNEL_VERSION:-}" ]; then echo "$VM_KERNEL_VERSION"; return; fi
	local k v best=""
	for k in /boot/vmlinuz-*; do
		v=${k#/boot/vmlinuz-}
		[ -f "/lib/modules/$v/modules.dep" ] || continue
		best=$(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -n1)
	done
	[ -n "$best" ] || { echo "vm: no /boot/vmlinuz-* with /lib/modules/<version>/modules.dep; run hack/install-deps.sh" >&2; return 1; }
	echo "$best"
}

# vm_base_key prints what the base image depends on: kernel, host packages, VM scripts.
vm_base_key() {
	local kver=$1
	{
		echo "format 1 kernel $kver"
		dpkg-query -W "linux-image-$kver" busybox-static iptables ipset ipvsadm conntrack iproute2 nftables libnftables1 libc6 2>/dev/null || true
		cat "$VM_DIR/build-base.sh" "$VM_DIR/lib.sh" "$VM_DIR/modules.txt" "$VM_DIR/guest/"*
	} | sha256sum | cut -c1-12
}

# vm_quote prints its arguments single-quoted for a POSIX shell.
vm_quote() {
	local a out=""
	for a in "$@"; do out+="'${a//\'/\'\\\'\'}' "; done
	printf '%s' "${out% }"
}
