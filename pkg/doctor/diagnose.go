package doctor

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Options tune the diagnosis.
type Options struct {
	// ExcludeCIDRs hold virtual servers and addresses that are not the
	// proxier's (another load balancer on the node): never reported.
	ExcludeCIDRs []netip.Prefix
}

// diagnosis carries one Diagnose call's input and output.
type diagnosis struct {
	snap     *Snapshot
	opts     Options
	idx      *clusterIndex // nil without cluster data
	findings []Finding
}

// Diagnose reads the snapshot and reports what is wrong; it touches
// nothing, and its result depends on nothing but its arguments.
func Diagnose(snap Snapshot, opts Options) Report {
	d := &diagnosis{snap: &snap, opts: opts}
	if snap.Cluster != nil {
		d.idx = newClusterIndex(snap.Cluster)
	}
	d.checkRealServers()
	d.checkVirtualServers()
	d.checkAddresses()
	d.checkMissingServices()
	d.checkUDPConntrack()
	sortFindings(d.findings)
	return Report{
		Node:     d.facts(),
		Risk:     assessRisk(d.riskInput()),
		Findings: d.findings,
		Gaps:     slices.Clone(snap.Gaps),
	}
}

func (d *diagnosis) add(f Finding) { d.findings = append(d.findings, f) }

// excluded tells addresses that belong to someone else.
func (d *diagnosis) excluded(a netip.Addr) bool {
	return slices.ContainsFunc(d.opts.ExcludeCIDRs, func(p netip.Prefix) bool { return p.Contains(a) })
}

// ours returns the virtual servers that are not excluded.
func (d *diagnosis) ours() []ipvs.VirtualServer {
	var out []ipvs.VirtualServer
	for _, vs := range d.snap.VirtualServers {
		if !d.excluded(vs.Address) {
			out = append(out, vs)
		}
	}
	return out
}

func (d *diagnosis) facts() NodeFacts {
	f := NodeFacts{
		KernelRelease: d.snap.KernelRelease, Sysctls: d.snap.Sysctls, VirtualServers: len(d.snap.VirtualServers),
		DummyDevice: d.snap.DummyDevice, DummyPresent: d.snap.DummyPresent, DummyAddresses: len(d.snap.DummyAddresses),
		UDPConntrack: len(d.snap.UDPConntrack), Services: -1, EndpointSlices: -1,
		ImmediateTermination: d.snap.Gate,
	}
	for _, vs := range d.snap.VirtualServers {
		f.RealServers += len(vs.Destinations)
		for _, dst := range vs.Destinations {
			if dst.Weight == 0 {
				f.WeightZero++
			}
		}
	}
	if c := d.snap.Cluster; c != nil {
		f.Services, f.EndpointSlices = len(c.Services), len(c.EndpointSlices)
	}
	return f
}

func (d *diagnosis) riskInput() riskInput {
	in := riskInput{kernelRelease: d.snap.KernelRelease, sysctls: d.snap.Sysctls}
	for _, vs := range d.ours() {
		if vs.Flags&ipvs.FlagPersistent != 0 {
			in.persistentServers++
		}
		for _, dst := range vs.Destinations {
			if dst.Weight == 0 {
				in.weightZero++
			}
		}
	}
	if d.idx != nil {
		in.gracefulServices = d.idx.gracefulServices
	}
	return in
}

// realServerFlush is the conntrack filter for a real server's entries, the
// one the proxier uses when it deletes a real server at once.
func realServerFlush(svc ipvs.ServiceKey, dst ipvs.DestinationKey) conntrack.Filter {
	return conntrack.Filter{
		Protocol: protocolNumber(svc.Protocol), OrigDst: svc.Address, OrigDstPort: svc.Port,
		ReplySrc: dst.Address, ReplySrcPort: dst.Port,
	}
}

func protocolNumber(p ipvs.Protocol) uint8 {
	switch p {
	case ipvs.UDP:
		return conntrack.ProtoUDP
	case ipvs.SCTP:
		return conntrack.ProtoSCTP
	}
	return conntrack.ProtoTCP
}

func realServerName(svc ipvs.ServiceKey, dst ipvs.DestinationKey) string {
	return fmt.Sprintf("%s -> %s", svc, dst)
}
