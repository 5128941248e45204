package doctor

import (
	"cmp"
	"slices"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// Severity says whether a finding counts as a problem (non-zero exit).
type Severity string

// Severities, most severe first.
const (
	SeverityProblem Severity = "problem"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

func (s Severity) rank() int {
	return map[Severity]int{SeverityProblem: 0, SeverityWarning: 1, SeverityInfo: 2}[s]
}

// Kind names what a finding is about.
type Kind string

// Kinds of findings.
const (
	// KindStaleRealServer: weight 0, and its endpoint is gone or not serving.
	KindStaleRealServer Kind = "stale-real-server"
	// KindDrainingRealServer: weight 0 while its endpoint still serves (or
	// without cluster data, when the doctor cannot tell).
	KindDrainingRealServer Kind = "draining-real-server"
	// KindRealServerWithoutEndpoint: weight above 0 for an endpoint that is gone.
	KindRealServerWithoutEndpoint Kind = "real-server-without-endpoint"
	// KindVirtualServerWithoutService: no Service has its address and port.
	KindVirtualServerWithoutService Kind = "virtual-server-without-service"
	// KindAddressWithoutService: bound on the dummy device for nothing.
	KindAddressWithoutService Kind = "address-without-service"
	// KindServiceMissingFromIPVS: a Service's cluster IP port has no virtual server.
	KindServiceMissingFromIPVS Kind = "service-missing-from-ipvs"
	// KindServiceAddressNotBound: a Service's cluster IP is not on the dummy device.
	KindServiceAddressNotBound Kind = "service-address-not-bound"
	// KindStaleUDPConntrack: UDP conntrack entries to an endpoint that is gone.
	KindStaleUDPConntrack Kind = "stale-udp-conntrack"
)

// Finding is one thing the doctor found.
type Finding struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	// Object names the kernel object: "TCP 10.96.0.1:80 -> 10.244.1.5:8080".
	Object string `json:"object"`
	// Service is "namespace/name:port" when the finding belongs to one.
	Service string `json:"service,omitempty"`
	Message string `json:"message"`
	// Connections are a real server's IPVS connection counts.
	Connections *Connections `json:"connections,omitempty"`
	// Repair is what --fix does about it; nil when --fix leaves it alone.
	Repair *Repair `json:"repair,omitempty"`
}

// Connections are IPVS's counters of a real server.
type Connections struct {
	Active   int `json:"active"`
	Inactive int `json:"inactive"`
}

// RealServer names one real server of one virtual server.
type RealServer struct {
	Service     ipvs.ServiceKey     `json:"service"`
	Destination ipvs.DestinationKey `json:"destination"`
}

// Repair is a deletion Fix may do: the real server first, then the
// conntrack entries.
type Repair struct {
	DeleteRealServer *RealServer        `json:"deleteRealServer,omitempty"`
	DeleteConntrack  []conntrack.Filter `json:"deleteConntrack,omitempty"`
}

// RiskLevel grades the source-port-reuse failure's risk on the node.
type RiskLevel string

// Risk levels, most severe first.
const (
	RiskHigh    RiskLevel = "high"
	RiskMedium  RiskLevel = "medium"
	RiskUnknown RiskLevel = "unknown"
	RiskLow     RiskLevel = "low"
)

func (l RiskLevel) rank() int {
	return map[RiskLevel]int{RiskHigh: 0, RiskMedium: 1, RiskUnknown: 2, RiskLow: 3}[l]
}

// severity is how a risk level counts in the exit code.
func (l RiskLevel) severity() Severity {
	switch l {
	case RiskHigh:
		return SeverityProblem
	case RiskLow:
		return SeverityInfo
	}
	return SeverityWarning
}

// Risk is the source-port-reuse risk, with the reasons and the fixes in
// plain words.
type Risk struct {
	Level   RiskLevel    `json:"level"`
	Reasons []RiskReason `json:"reasons"`
}

// RiskReason is one rule that applied.
type RiskReason struct {
	Level  RiskLevel `json:"level"`
	Reason string    `json:"reason"`
	Fix    string    `json:"fix,omitempty"`
}

// NodeFacts summarise the snapshot.
type NodeFacts struct {
	KernelRelease  string         `json:"kernelRelease"`
	Sysctls        map[string]int `json:"sysctls"`
	VirtualServers int            `json:"virtualServers"`
	RealServers    int            `json:"realServers"`
	WeightZero     int            `json:"realServersAtWeightZero"`
	DummyDevice    string         `json:"dummyDevice"`
	DummyPresent   bool           `json:"dummyPresent"`
	DummyAddresses int            `json:"dummyAddresses"`
	UDPConntrack   int            `json:"udpConntrackEntries"`
	// Services and EndpointSlices are -1 without cluster data.
	Services       int `json:"services"`
	EndpointSlices int `json:"endpointSlices"`
	// ImmediateTermination is the gate on the running kube-proxy.
	ImmediateTermination GateFact `json:"immediateTermination"`
}

// Report is the outcome of Diagnose (and of Fix, when it ran).
type Report struct {
	Node     NodeFacts   `json:"node"`
	Risk     Risk        `json:"risk"`
	Findings []Finding   `json:"findings"`
	Gaps     []string    `json:"gaps,omitempty"`
	Fixed    []FixResult `json:"fixed,omitempty"`
}

// Count returns how many findings have the severity, counting the risk
// assessment as one finding of its level's severity.
func (r *Report) Count(s Severity) int {
	n := 0
	if r.Risk.Level.severity() == s {
		n++
	}
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// sortFindings orders by severity, kind, object.
func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Severity.rank(), b.Severity.rank()), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Object, b.Object), cmp.Compare(a.Service, b.Service))
	})
}
