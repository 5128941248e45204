package doctor

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

// Sources are where Collect reads from; NodeSources gives the node's.
type Sources struct {
	IPVS   ipvs.Interface
	Sysctl sysctl.Interface
	NetDev netdev.Interface
	// Conntrack deletes entries (used by Fix only).
	Conntrack conntrack.Interface
	// ListUDPConntrack lists the UDP conntrack entries (ListUDPConntrack
	// on a node).
	ListUDPConntrack func() ([]conntrack.Entry, error)
	// KernelRelease returns uname -r.
	KernelRelease func() (string, error)
	// Client reads Services and EndpointSlices; nil skips the cluster.
	Client      kubernetes.Interface
	DummyDevice string
	// ReadConfigz reads the running kube-proxy's /configz, from
	// ConfigzURL; nil: not asked (the gate's state is then unknown).
	ReadConfigz func(ctx context.Context) ([]byte, error)
	ConfigzURL  string
}

// Collect reads a snapshot: the kernel first, then the cluster, so that a
// real server seen in the kernel was programmed from endpoints no newer
// than the ones read (a real server added meanwhile cannot look stale).
// What cannot be read is recorded in Snapshot.Gaps.
func Collect(ctx context.Context, src Sources) Snapshot {
	snap := Snapshot{DummyDevice: src.DummyDevice, Sysctls: map[string]int{}}
	gap := func(what string, err error) {
		snap.Gaps = append(snap.Gaps, fmt.Sprintf("%s: %v", what, err))
	}
	release, err := src.KernelRelease()
	if err != nil {
		gap("kernel release", err)
	}
	snap.KernelRelease = release
	for _, name := range sysctlNames() {
		if v, err := src.Sysctl.Get(name); err != nil {
			gap("sysctl "+name, err)
		} else {
			snap.Sysctls[name] = v
		}
	}
	if snap.VirtualServers, err = src.IPVS.List(); err != nil {
		gap("IPVS table", err)
	}
	collectDummy(&snap, src.NetDev, gap)
	if snap.UDPConntrack, err = src.ListUDPConntrack(); err != nil {
		gap("UDP conntrack entries", err)
	}
	if src.Client != nil {
		if snap.Cluster, err = collectCluster(ctx, src.Client); err != nil {
			gap("cluster", err)
		}
	}
	snap.Gate = collectGate(ctx, src)
	return snap
}

// collectGate asks the running kube-proxy; not knowing is no gap (the
// dataplane was inspected all the same).
func collectGate(ctx context.Context, src Sources) GateFact {
	if src.ReadConfigz == nil {
		return GateFact{State: GateUnknown, Reason: "not asked (--configz-url is empty)"}
	}
	body, err := src.ReadConfigz(ctx)
	if err != nil {
		return GateFact{State: GateUnknown, Source: src.ConfigzURL, Reason: err.Error()}
	}
	return gateFromConfigz(body, src.ConfigzURL)
}

func collectDummy(snap *Snapshot, nd netdev.Interface, gap func(string, error)) {
	addrs, err := nd.Addresses(snap.DummyDevice)
	switch {
	case errors.Is(err, syscall.ENOENT):
		snap.DummyPresent = false
	case err != nil:
		gap("addresses of "+snap.DummyDevice, err)
	default:
		snap.DummyPresent, snap.DummyAddresses = true, addrs
	}
}

// collectCluster lists every Service and EndpointSlice.
func collectCluster(ctx context.Context, client kubernetes.Interface) (*Cluster, error) {
	services, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Services: %w", err)
	}
	slices, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list EndpointSlices: %w", err)
	}
	return &Cluster{Services: services.Items, EndpointSlices: slices.Items}, nil
}
