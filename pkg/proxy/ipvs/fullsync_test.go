package ipvs

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
)

// A full sync keeps the desired state unless what every contribution
// depends on changed (node addresses, topology labels); whatever happened,
// it must reach the state a fresh proxier reaches on the same cluster and node.
func TestFullSyncReachesWhatAFreshProxierReaches(t *testing.T) {
	zoneA := map[string]string{v1.LabelTopologyZone: "zone-a"}
	for _, tc := range []struct {
		name string
		// node changes the node after the first sync (and the fresh one's).
		node func(t *testing.T, k *kernel)
		// events change the cluster after the first sync; end is the cluster
		// then, fed to the fresh proxier.
		events, end func(p *Proxier)
	}{
		{name: "periodic, nothing changed", events: func(*Proxier) {}, end: clusterAB},
		{name: "periodic, with changes pending", events: func(p *Proxier) {
			p.OnEndpointSliceUpdate(nil, slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.2")))
			p.OnServiceDelete(nodePortSvc("b", "10.96.0.2", 30081))
			addC(p)
		}, end: func(p *Proxier) {
			p.OnServiceAdd(nodePortSvc("a", "10.96.0.1", 30080))
			p.OnEndpointSliceAdd(slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.2")))
			addC(p)
		}},
		{name: "node address added", node: func(t *testing.T, k *kernel) {
			must(t, k.netdev.AddAddress("eth0", netip.MustParseAddr("192.168.0.11")))
		}, events: func(*Proxier) {}, end: clusterAB},
		{name: "topology labels changed", events: func(p *Proxier) { p.OnTopologyChange(zoneA) }, end: func(p *Proxier) {
			p.OnTopologyChange(zoneA)
			clusterAB(p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			p := newTestProxier(t, k, testConfig(v1.IPv4Protocol))
			clusterAB(p)
			syncOK(t, p)
			if tc.node != nil {
				tc.node(t, k)
			}
			tc.events(p)
			passSyncPeriod(p)
			syncOK(t, p)

			fresh := newKernel(t)
			if tc.node != nil {
				tc.node(t, fresh)
			}
			q := newTestProxier(t, fresh, testConfig(v1.IPv4Protocol))
			tc.end(q)
			syncOK(t, q)
			wantDump(t, "ipvs", ipvsDump(k), ipvsDump(fresh))
			wantDump(t, "ipsets", k.ipset.Dump(), fresh.ipset.Dump())
			wantDump(t, "kube-ipvs0", k.netdev.Dump(), fresh.netdev.Dump())
		})
	}
}

func nodePortSvc(name, ip string, port int32) *v1.Service {
	return svc(name, ip, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = port
	})
}

// clusterAB is NodePort Services a (one endpoint) and b (two, with zone hints).
func clusterAB(p *Proxier) {
	p.OnServiceAdd(nodePortSvc("a", "10.96.0.1", 30080))
	p.OnEndpointSliceAdd(slice("a", discovery.AddressTypeIPv4, readyEP("10.244.1.1")))
	p.OnServiceAdd(nodePortSvc("b", "10.96.0.2", 30081))
	x, y := readyEP("10.244.2.1"), readyEP("10.244.2.2")
	x.zone, y.zone = "zone-a", "zone-b"
	p.OnEndpointSliceAdd(slice("b", discovery.AddressTypeIPv4, x, y))
}

func addC(p *Proxier) {
	p.OnServiceAdd(nodePortSvc("c", "10.96.0.3", 30082))
	p.OnEndpointSliceAdd(slice("c", discovery.AddressTypeIPv4, readyEP("10.244.3.1")))
}
