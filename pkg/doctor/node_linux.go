package doctor

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

// ipvsProcFile exists in a network namespace when the kernel has IPVS.
const ipvsProcFile = "/proc/net/ip_vs"

// NodeSources are the kernel of the calling thread's network namespace,
// without a cluster client. It fails when the kernel has no IPVS.
func NodeSources(dummyDevice string) (Sources, error) {
	// ipvs.New panics inside moby/ipvs when the kernel has no IPVS at all;
	// ip_vs creates this file in every network namespace.
	if _, err := os.Stat(ipvsProcFile); err != nil {
		return Sources{}, fmt.Errorf("no IPVS in this kernel or namespace (is ip_vs loaded?): %w", err)
	}
	table, err := ipvs.New()
	if err != nil {
		return Sources{}, err
	}
	return Sources{
		IPVS: table, Sysctl: sysctl.New(), NetDev: netdev.New(), Conntrack: conntrack.New(),
		ListUDPConntrack: ListUDPConntrack, KernelRelease: KernelRelease, DummyDevice: dummyDevice,
	}, nil
}

// KernelRelease returns uname -r.
func KernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// ListUDPConntrack lists the UDP entries of the conntrack table, both
// families, read-only (ctnetlink dump).
func ListUDPConntrack() ([]conntrack.Entry, error) {
	var entries []conntrack.Entry
	for _, family := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, family)
		if err != nil {
			return nil, fmt.Errorf("list conntrack table (family %d): %w", family, err)
		}
		for _, flow := range flows {
			if flow.Forward.Protocol == conntrack.ProtoUDP {
				entries = append(entries, entryFromFlow(flow))
			}
		}
	}
	return entries, nil
}

func entryFromFlow(flow *netlink.ConntrackFlow) conntrack.Entry {
	addr := func(b []byte) netip.Addr {
		a, _ := netip.AddrFromSlice(b)
		return a.Unmap()
	}
	return conntrack.Entry{
		Protocol: flow.Forward.Protocol,
		OrigSrc:  addr(flow.Forward.SrcIP), OrigSrcPort: flow.Forward.SrcPort,
		OrigDst: addr(flow.Forward.DstIP), OrigDstPort: flow.Forward.DstPort,
		ReplySrc: addr(flow.Reverse.SrcIP), ReplySrcPort: flow.Reverse.SrcPort,
	}
}
