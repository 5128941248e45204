#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the VM need, when missing.
source "$(dirname "$0")/lib.sh"
# The VM (hack/vm) copies busybox, iptables, ipset, ipvsadm, conntrack, iproute2 and nft (nftables) from the host.
pkgs=(qemu-system-x86 busybox-static linux-image-amd64 ipvsadm ipset iptables conntrack iproute2 nftables cpio zstd kmod)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	step "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: ok"
