package upstreamproxier

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/utils/ptr"
)

// TestNFTablesProxierSyncsOnTheFake builds upstream's nftables proxier on
// knftables' Fake, syncs one Service with one endpoint, and finds the
// Service's rules in the fake's dump, with the fake's calls counted.
func TestNFTablesProxierSyncsOnTheFake(t *testing.T) {
	nft := NewNFTables(v1.IPv4Protocol)
	cfg := &kubeproxyconfig.KubeProxyConfiguration{
		SyncPeriod: metav1.Duration{Duration: time.Hour},
		NFTables:   kubeproxyconfig.KubeProxyNFTablesConfiguration{MasqueradeBit: ptr.To[int32](14)},
	}
	p, err := NewNFTablesProxier(context.Background(), cfg, v1.IPv4Protocol, "node-a", net.ParseIP("192.168.0.10"), nft)
	if err != nil {
		t.Fatal(err)
	}
	p.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.1.7", ClusterIPs: []string{"10.96.1.7"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	})
	p.OnEndpointSliceAdd(&discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-0",
			Labels: map[string]string{discovery.LabelServiceName: "web"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports: []discovery.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080),
			Protocol: ptr.To(v1.ProtocolTCP)}},
		Endpoints: []discovery.Endpoint{{Addresses: []string{"10.128.0.5"},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-b")}},
	})
	p.OnServiceSynced()
	p.OnEndpointSlicesSynced()

	dump := nft.Fake.Dump()
	for _, want := range []string{
		"add element ip kube-proxy service-ips { 10.96.1.7 . tcp . 80 : goto service-", // the service's IP and port
		"dnat to 10.128.0.5:8080", // its endpoint
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("the fake's dump lacks %q:\n%s", want, dump)
		}
	}
	calls := nft.Calls.Snapshot()
	if calls["nft.Run"] == 0 || nft.Operations() < calls["nft.Run"] {
		t.Errorf("calls %v, operations %d: want transactions run, each with operations", calls, nft.Operations())
	}
	if in := nft.InFake(); in.Duration <= 0 || in.AllocBytes == 0 {
		t.Errorf("inside the fake: %+v, want time and allocations measured", in)
	}
}
