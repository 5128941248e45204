// Package nodeloss is scenario 2 of issue 13 on the real cluster (make cluster): node-b
// is lost. A Service (HTTP 80, echo 9000) has three test-server pods, two on node-b and
// one on node-a; a client pod on node-a holds long-lived connections to the echo port
// through the VIP (rolling-client hold -reconnect: a failed connection is replaced) and
// sends new HTTP requests (rolling-client client). The test then kills node-b's qemu with
// SIGKILL ($NODE_KILL_SH node-b) and records, from the kill, when the real
// node-lifecycle controller turns node-b's Ready condition away from True, when the
// EndpointSlice controller marks node-b's endpoints not ready, when node-a's IPVS sets
// their real servers to weight 0 or deletes them (the watcher), when each long-lived
// connection to node-b sees an error, and whether new connections still reach node-b
// (failed requests and reconnects after the real servers changed).
//
// Build tag cluster; reads $CLUSTER_ADMIN_KUBECONFIG, $NODE_KILL_SH, $NODELOSS_ROW,
// $NODELOSS_REPORT (Markdown rows appended), $NODELOSS_OUT (the requests as a
// results.Run, for the plot), $NODELOSS_AFTER (how long to keep watching after the
// kill, default 150s). hack/cluster/scenario-nodeloss.sh runs it and brings node-b back.
package nodeloss
