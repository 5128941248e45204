// Package doctor inspects a node's IPVS dataplane for the states behind
// Service failures after rollouts: real servers left at weight 0 for pods
// that are gone, kernel settings under which reused source ports reach
// them, virtual servers and addresses out of step with the Services, and
// stale UDP conntrack entries. Collect gathers a Snapshot (plain data),
// Diagnose turns it into a Report without touching anything, and Fix
// deletes what the report marks as safe to delete.
package doctor

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// The IPVS sysctls the diagnosis reads.
const (
	SysctlConnReuseMode    = "net/ipv4/vs/conn_reuse_mode"
	SysctlExpireNodestConn = "net/ipv4/vs/expire_nodest_conn"
	SysctlExpireQuiescent  = "net/ipv4/vs/expire_quiescent_template"
	SysctlVSConntrack      = "net/ipv4/vs/conntrack"
)

// sysctlNames lists the sysctls Collect reads, in report order.
func sysctlNames() []string {
	return []string{SysctlConnReuseMode, SysctlExpireNodestConn, SysctlExpireQuiescent, SysctlVSConntrack}
}

// DefaultDummyDevice is the device the proxier binds service addresses on.
const DefaultDummyDevice = "kube-ipvs0"

// Snapshot is everything Diagnose looks at. Collect fills it from a node;
// tests write it by hand.
type Snapshot struct {
	// KernelRelease is uname -r, like "6.1.0-56-amd64" ("" when unknown).
	KernelRelease string
	// Sysctls holds the readable ones among the Sysctl* names.
	Sysctls map[string]int
	// VirtualServers is the IPVS table (nil when it could not be read).
	VirtualServers []ipvs.VirtualServer
	// DummyDevice is the device's name; DummyPresent says whether it exists.
	DummyDevice    string
	DummyPresent   bool
	DummyAddresses []netip.Addr
	// UDPConntrack are the node's UDP conntrack entries.
	UDPConntrack []conntrack.Entry
	// Cluster is nil when the API server was not asked.
	Cluster *Cluster
	// Gate is IPVSImmediateTermination on the running kube-proxy.
	Gate GateFact
	// Gaps say what could not be read, and why; each one makes the
	// diagnosis incomplete.
	Gaps []string
}

// Cluster is what the API server said about Services and EndpointSlices.
type Cluster struct {
	Services       []v1.Service
	EndpointSlices []discovery.EndpointSlice
}
