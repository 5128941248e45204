// Package ipvs programs the kernel's IP Virtual Server table: virtual servers
// (services) and their real servers (destinations).
package ipvs

import (
	"net/netip"
	"time"
)

// Protocol is a Kubernetes protocol name: "TCP", "UDP" or "SCTP".
type Protocol string

// Protocols IPVS can balance.
const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Service flags (IP_VS_SVC_F_* in include/uapi/linux/ip_vs.h).
const (
	FlagPersistent uint32 = 0x1
	// FlagHashed is set by the kernel on every service it holds; it is
	// ignored when comparing a wanted service with the kernel's.
	FlagHashed     uint32 = 0x2
	FlagSchedFlag1 uint32 = 0x8  // sh-fallback / mh-fallback
	FlagSchedFlag2 uint32 = 0x10 // sh-port / mh-port
	FlagSchedFlag3 uint32 = 0x20
)

// ServiceKey identifies a virtual server.
type ServiceKey struct {
	Address  netip.Addr
	Protocol Protocol
	Port     uint16
}

// Service is a virtual server with its options; comparable with ==.
type Service struct {
	ServiceKey
	Scheduler string
	Flags     uint32 // without FlagHashed when built by callers
	Timeout   uint32 // persistence timeout in seconds (with FlagPersistent)
	Netmask   uint32 // persistence netmask: 0xffffffff for IPv4, 128 for IPv6
}

// DestinationKey identifies a real server within a virtual server.
type DestinationKey struct {
	Address netip.Addr
	Port    uint16
}

// Destination is a real server. ActiveConn and InactiveConn are read from
// the kernel by List and ignored on writes.
type Destination struct {
	DestinationKey
	Weight       int
	ActiveConn   int
	InactiveConn int
}

// VirtualServer is one service with all of its real servers, as read back.
type VirtualServer struct {
	Service
	Destinations []Destination
}

// Timeouts are the global IPVS connection timeouts (ipvsadm --set).
type Timeouts struct {
	TCP    time.Duration
	TCPFin time.Duration
	UDP    time.Duration
}

// Interface is the IPVS table. Errors from the kernel are returned wrapped,
// naming the object and the operation, and keep the errno (errors.Is works
// with syscall.EEXIST / syscall.ENOENT).
type Interface interface {
	// List reads every virtual server with its real servers: one snapshot.
	List() ([]VirtualServer, error)
	// ListFamily is List for one address family (IPv6 when ipv6): the
	// other family's real servers are not read (a dual-stack node's IPv6
	// full sync would otherwise read every IPv4 real server to drop it).
	ListFamily(ipv6 bool) ([]VirtualServer, error)
	// Destinations reads one virtual server's real servers (with their
	// connection counts); like the kernel, none (and no error) when the
	// virtual server does not exist.
	Destinations(ServiceKey) ([]Destination, error)
	AddService(Service) error
	UpdateService(Service) error
	DeleteService(ServiceKey) error
	AddDestination(ServiceKey, Destination) error
	UpdateDestination(ServiceKey, Destination) error
	DeleteDestination(ServiceKey, DestinationKey) error
	// Flush deletes every virtual server.
	Flush() error
	// Connections calls f with each entry of the connection table until f
	// returns false. The kernel formats every connection of the node (of
	// every namespace, showing the caller's) for it, so the cost grows with
	// the connections: read it only when one real server's matter.
	Connections(f func(Connection) bool) error
	Timeouts() (Timeouts, error)
	// SetTimeouts sets the non-zero timeouts; a zero field is left as is.
	SetTimeouts(Timeouts) error
}
