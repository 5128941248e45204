// Package smoke checks that the integration-test VM (hack/vm) provides what the real-kernel
// tests rely on: root, IPVS, iptables (legacy), ipset, conntrack and the kernel modules.
package smoke
