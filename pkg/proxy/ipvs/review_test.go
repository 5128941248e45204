package ipvs

import (
	"strings"
	"testing"

	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
)

// A Service whose target port changes (the pods stay, the endpoint port
// moves from 8080 to 9090) leaves every pod alive: the real servers on the
// old port drain at weight 0 as upstream's do, under the gate too; the
// pods' established connections are healthy.
func TestImmediateTerminationTargetPortChangeIsGraceful(t *testing.T) {
	k := newKernel(t)
	p := gateOnProxier(t, k)
	cur := webOldAndNew(t, k, p, 2)
	updateSlice(t, p, cur, func(s *discovery.EndpointSlice) { s.Ports[0].Port = ptr.To[int32](9090) })
	wantDump(t, "ipvs after the target port changed", ipvsDump(k), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.1:8080 weight=0 active=2 inactive=2
		  -> 10.244.1.1:9090 weight=1 active=0 inactive=0
		  -> 10.244.1.2:9090 weight=1 active=0 inactive=0`)
	wantFlowsKept(t, k, "a target port change")
	wantDeletedImmediately(t, p, 0)
}

// An address not ready in two slices of a Service on two nodes, one of
// them lost (a pod IP reused on another node while the slices catch up):
// its pod on the Ready node may be alive, so its real server drains at
// weight 0, every time (the index's map order decided it before).
func TestLostNodeRuleIgnoresAnAddressOnTwoNodes(t *testing.T) {
	for i := range 20 {
		k := newKernel(t)
		p := gateOnProxier(t, k)
		cur := webOldAndNew(t, k, p, 2)
		must(t, k.ipvs.SetConnections(vipKey, oldDest, 2, 3))
		p.OnNodesNotReady(sets.New("node-lost"))
		syncOK(t, p)
		other := slice("web", discovery.AddressTypeIPv4, ep{ip: oldPod.String(), node: "node-lost"})
		other.Name = "web-def"
		p.OnEndpointSliceAdd(other)
		updateSlice(t, p, cur, setConditions(0, notReady()))
		if got, want := strings.TrimSpace(ipvsDump(k)), dedent(oldParkedAndNew); got != want {
			t.Fatalf("run %d: ipvs:\n%s\nwant\n%s", i, got, want)
		}
	}
}
