package ipvs

import (
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/kubernetes/pkg/proxy/healthcheck"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
)

// DummyDevice is the interface that holds every service address.
const DummyDevice = "kube-ipvs0"

// TerminationPolicyAnnotation overrides, per Service, what happens to the
// real server of an endpoint that stops being used:
//
//	"immediate": delete the real server and its conntrack entries in the
//	             same sync (what the IPVSImmediateTermination gate does);
//	"graceful":  upstream's behaviour: weight 0, deleted once its
//	             connections drain (TCP; UDP and SCTP are deleted at once).
//
// Any other value is ignored (and reported) and the gate decides.
const TerminationPolicyAnnotation = "ipvs-proxy.kubernetes.io/termination-policy"

// Config is what one proxier (one IP family) needs from the
// KubeProxyConfiguration, the flags and the node.
type Config struct {
	IPFamily v1.IPFamily
	NodeName string
	// NodeIP is the node's primary IP of this family (may be invalid when
	// the node has none of this family).
	NodeIP netip.Addr

	SyncPeriod    time.Duration
	MinSyncPeriod time.Duration

	// Scheduler is the IPVS scheduler ("rr" when empty).
	Scheduler string
	// SchedulerFlags are IP_VS_SVC_F_SCHED* bits added to every virtual server.
	SchedulerFlags uint32
	// ExcludeCIDRs: virtual servers in these ranges that the proxier did not
	// create are never deleted (as upstream; their real servers are theirs).
	ExcludeCIDRs []netip.Prefix
	StrictARP    bool
	// TCPTimeout, TCPFinTimeout, UDPTimeout are the IPVS timeouts; zero
	// leaves the kernel's value.
	TCPTimeout    time.Duration
	TCPFinTimeout time.Duration
	UDPTimeout    time.Duration

	MasqueradeAll bool
	MasqueradeBit int
	// LocalDetector tells pod traffic from other traffic (detectLocalMode).
	LocalDetector proxyutil.LocalTrafficDetector
	// NodePortAddresses are CIDRs (the caller expands upstream's "primary"
	// into the node IPs); empty means all local addresses.
	NodePortAddresses []string

	// ImmediateTermination is the IPVSImmediateTermination feature gate.
	ImmediateTermination bool
	// FinishGrace is how long, at most, the immediate policy keeps the real
	// server of a removed endpoint that was draining (its pod served while
	// it terminated) while connections are still established to it; zero
	// deletes it at once. See DefaultFinishGrace.
	FinishGrace time.Duration
}

// DefaultFinishGrace lets requests in flight to a pod that is removed from
// its EndpointSlice while its process still runs complete: deleting the
// real server drops their next packet. It is short because, on kernels
// before 5.9, every new connection that reuses a source port last used
// towards that pod still reaches it until the real server is gone.
const DefaultFinishGrace = 300 * time.Millisecond

// Deps are the kernel interfaces and servers the proxier works through.
type Deps struct {
	IPVS      ipvs.Interface
	IPSet     ipset.Interface
	IPTables  iptables.Interface
	NetDev    netdev.Interface
	Conntrack conntrack.Interface
	Sysctl    sysctl.Interface
	// KernelVersion like "6.1.0-56-amd64" decides conn_reuse_mode.
	KernelVersion string
	Recorder      events.EventRecorder
	// HealthServer may be nil (tests).
	HealthServer *healthcheck.ProxyHealthServer
	// ServiceHealthServer may be nil: a fake is used then.
	ServiceHealthServer healthcheck.ServiceHealthServer
	// Metrics may be nil: unregistered metrics are used then.
	Metrics *Metrics
	// Now may be nil: time.Now is used then (tests set it).
	Now func() time.Time
}
