package ipvs

import (
	"testing"

	discovery "k8s.io/api/discovery/v1"
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

