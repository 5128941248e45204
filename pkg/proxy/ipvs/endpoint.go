package ipvs

import (
	"math"
	"strconv"
	"strings"
	"unsafe"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"
)

// endpoint is the proxy.Endpoint the proxier keeps, one per endpoint and
// service port (100k at 10k services x 10 endpoints): 16 bytes holding the
// "ip:port" string upstream's BaseEndpointInfo already made, the IP and the
// port being parts of it, where BaseEndpointInfo keeps 64 bytes and a
// second string. The string is kept as a pointer to its bytes and a 16-bit
// length rather than a string header (16 bytes on its own): the endpoint
// takes 16 bytes instead of 24. One with topology hints is a
// hintedEndpoint.
type endpoint struct {
	hostPort    *byte
	hostPortLen uint16
	flags       endpointFlags
}

// hintedEndpoint is an endpoint the EndpointSlice gave topology hints.
type hintedEndpoint struct {
	endpoint
	zones, nodes sets.Set[string]
}

type endpointFlags uint8

const (
	endpointLocal endpointFlags = 1 << iota
	endpointReady
	endpointServing
	endpointTerminating
)

var (
	_ proxy.Endpoint = &endpoint{}
	_ proxy.Endpoint = &hintedEndpoint{}
)

// newEndpoint keeps what upstream's endpoint says in an endpoint; info
// itself when its string is too long for one (no valid address is).
func newEndpoint(info proxy.Endpoint) proxy.Endpoint {
	hostPort := info.String()
	if len(hostPort) > math.MaxUint16 {
		return info
	}
	e := endpoint{hostPort: unsafe.StringData(hostPort), hostPortLen: uint16(len(hostPort)), flags: flagsOf(info)}
	if zones, nodes := info.ZoneHints(), info.NodeHints(); zones != nil || nodes != nil {
		return &hintedEndpoint{endpoint: e, zones: zones, nodes: nodes}
	}
	return &e
}

func flagsOf(info proxy.Endpoint) endpointFlags {
	var f endpointFlags
	for _, b := range []struct {
		set  bool
		flag endpointFlags
	}{{info.IsLocal(), endpointLocal}, {info.IsReady(), endpointReady}, {info.IsServing(), endpointServing}, {info.IsTerminating(), endpointTerminating}} {
		if b.set {
			f |= b.flag
		}
	}
	return f
}

// String is "ip:port" ("[ip]:port" for IPv6), as upstream's (no copy).
func (e *endpoint) String() string { return unsafe.String(e.hostPort, e.hostPortLen) }

// IP is the address part of String (no copy).
func (e *endpoint) IP() string {
	hostPort := e.String()
	if strings.HasPrefix(hostPort, "[") {
		return hostPort[1:strings.LastIndexByte(hostPort, ']')]
	}
	return hostPort[:strings.LastIndexByte(hostPort, ':')]
}

// Port is the port part of String, which upstream wrote from the port
// with strconv.Itoa: it reads back exactly.
func (e *endpoint) Port() int {
	hostPort := e.String()
	port, _ := strconv.Atoi(hostPort[strings.LastIndexByte(hostPort, ':')+1:])
	return port
}

func (e *endpoint) IsLocal() bool       { return e.flags&endpointLocal != 0 }
func (e *endpoint) IsReady() bool       { return e.flags&endpointReady != 0 }
func (e *endpoint) IsServing() bool     { return e.flags&endpointServing != 0 }
func (e *endpoint) IsTerminating() bool { return e.flags&endpointTerminating != 0 }

func (e *endpoint) ZoneHints() sets.Set[string] { return nil }
func (e *endpoint) NodeHints() sets.Set[string] { return nil }

func (e *hintedEndpoint) ZoneHints() sets.Set[string] { return e.zones }
func (e *hintedEndpoint) NodeHints() sets.Set[string] { return e.nodes }
