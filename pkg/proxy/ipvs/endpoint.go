package ipvs

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/kubernetes/pkg/proxy"
)

// endpoint is the proxy.Endpoint the proxier keeps, one per endpoint and
// service port (100k at 10k services x 10 endpoints): 24 bytes holding the
// "ip:port" string upstream's BaseEndpointInfo already made, the IP being
// a part of it, where BaseEndpointInfo keeps 64 bytes and a second string.
// One with topology hints is a hintedEndpoint.
type endpoint struct {
	hostPort string
	port     int32
	flags    endpointFlags
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

// newEndpoint keeps what upstream's endpoint says in an endpoint.
func newEndpoint(info proxy.Endpoint) proxy.Endpoint {
	e := endpoint{hostPort: info.String(), port: int32(info.Port()), flags: flagsOf(info)}
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

// String is "ip:port" ("[ip]:port" for IPv6), as upstream's.
func (e *endpoint) String() string { return e.hostPort }

// IP is the address part of String (no copy).
func (e *endpoint) IP() string {
	if strings.HasPrefix(e.hostPort, "[") {
		return e.hostPort[1:strings.LastIndexByte(e.hostPort, ']')]
	}
	return e.hostPort[:strings.LastIndexByte(e.hostPort, ':')]
}

func (e *endpoint) Port() int           { return int(e.port) }
func (e *endpoint) IsLocal() bool       { return e.flags&endpointLocal != 0 }
func (e *endpoint) IsReady() bool       { return e.flags&endpointReady != 0 }
func (e *endpoint) IsServing() bool     { return e.flags&endpointServing != 0 }
func (e *endpoint) IsTerminating() bool { return e.flags&endpointTerminating != 0 }

func (e *endpoint) ZoneHints() sets.Set[string] { return nil }
func (e *endpoint) NodeHints() sets.Set[string] { return nil }

func (e *hintedEndpoint) ZoneHints() sets.Set[string] { return e.zones }
func (e *hintedEndpoint) NodeHints() sets.Set[string] { return e.nodes }
