package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
)

// kernelTimeout bounds every wait for the proxier to program the kernel.
const kernelTimeout = 90 * time.Second

// waitIPVS polls the node's IPVS table until cond holds and returns how long that took.
func (w *world) waitIPVS(ctx context.Context, what string, cond func([]ipvs.VirtualServer) bool) (time.Duration, error) {
	start := time.Now()
	for {
		vss, err := w.table.List()
		if err == nil && cond(vss) {
			return time.Since(start), nil
		}
		if time.Since(start) > kernelTimeout || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("%s: not in IPVS after %s (last error %v):\n%s", what, kernelTimeout, err, ipvs.FormatVirtualServers(vss))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// virtualServer finds a virtual server.
func virtualServer(vss []ipvs.VirtualServer, proto ipvs.Protocol, vip netip.AddrPort) (ipvs.VirtualServer, bool) {
	for _, vs := range vss {
		if vs.Protocol == proto && vs.Address == vip.Addr() && vs.Port == vip.Port() {
			return vs, true
		}
	}
	return ipvs.VirtualServer{}, false
}

// destination finds a real server of a virtual server.
func destination(vss []ipvs.VirtualServer, proto ipvs.Protocol, vip netip.AddrPort, rs netip.AddrPort) (ipvs.Destination, bool) {
	vs, ok := virtualServer(vss, proto, vip)
	if !ok {
		return ipvs.Destination{}, false
	}
	for _, d := range vs.Destinations {
		if d.Address == rs.Addr() && d.Port == rs.Port() {
			return d, true
		}
	}
	return ipvs.Destination{}, false
}

// hasWeight is a condition: rs is a real server of vip with that weight.
func hasWeight(proto ipvs.Protocol, vip, rs netip.AddrPort, weight int) func([]ipvs.VirtualServer) bool {
	return func(vss []ipvs.VirtualServer) bool {
		d, ok := destination(vss, proto, vip, rs)
		return ok && d.Weight == weight
	}
}

// notServing is a condition: rs gets no new connections from vip (weight 0, or deleted).
func notServing(proto ipvs.Protocol, vip, rs netip.AddrPort) func([]ipvs.VirtualServer) bool {
	return func(vss []ipvs.VirtualServer) bool {
		d, ok := destination(vss, proto, vip, rs)
		return !ok || d.Weight == 0
	}
}

// absent is a condition: rs is not a real server of vip.
func absent(proto ipvs.Protocol, vip, rs netip.AddrPort) func([]ipvs.VirtualServer) bool {
	return func(vss []ipvs.VirtualServer) bool {
		_, ok := destination(vss, proto, vip, rs)
		return !ok
	}
}

// servesAll is a condition: vip has exactly the real servers rss, all at weight 1.
func servesAll(proto ipvs.Protocol, vip netip.AddrPort, rss ...netip.AddrPort) func([]ipvs.VirtualServer) bool {
	return func(vss []ipvs.VirtualServer) bool {
		vs, ok := virtualServer(vss, proto, vip)
		if !ok || len(vs.Destinations) != len(rss) {
			return false
		}
		for _, rs := range rss {
			if d, ok := destination(vss, proto, vip, rs); !ok || d.Weight != 1 {
				return false
			}
		}
		return true
	}
}

// weightZeroLeft lists the real servers at weight 0.
func weightZeroLeft(vss []ipvs.VirtualServer) []string {
	var out []string
	for _, vs := range vss {
		for _, d := range vs.Destinations {
			if d.Weight == 0 {
				out = append(out, fmt.Sprintf("%s -> %s (active %d, inactive %d)", vs.ServiceKey, d.DestinationKey, d.ActiveConn, d.InactiveConn))
			}
		}
	}
	return out
}

// objectMeta names an object of the e2e namespace.
func objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: cluster.Namespace}
}
