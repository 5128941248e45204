// Package swap is scenario 3 of issue 13 on the real cluster (make cluster): the image
// swap on a live cluster. kube-proxy starts as kubeadm's stock addon (upstream's image,
// ipvs mode: hack/cluster/addon.sh upstream, run by the script before the test). With a
// Service (HTTP 80 and echo 9000) over a Deployment of 3 test-server replicas, a client
// pod on node-a sending new requests through the VIP (rolling-client client, source
// ports reused) and 4 long-lived connections to the echo port through the VIP
// (rolling-client hold, a line every 200 ms), the test swaps the image as
// docs/kubeadm.md says (addon.sh $SWAP_WAY: "overlay", way C, or "patch no-gate", way A
// without the gate), then turns the gate on by editing the ConfigMap (addon.sh gate-on:
// kubectl edit, rollout restart). It reports failed requests, long-lived connections
// cut, and node-a's state (IPVS table, iptables rules of both families, ipsets with their
// members) before the swap, after it and after the gate. Once the client is done it
// cleans node-a (podkit.CleanProxyNode: kube-proxy --cleanup while the DaemonSet has no
// pod there) and lets ours rebuild it with the same Services and pods: "ours alone".
// Lines of the state after the gate that ours alone does not make are leftovers of
// upstream; the row fails on any, as on a failed request or a cut connection.
// SWAP_WAY=none is the control row: upstream's image the whole time, the same traffic
// for the same time and the same container work on node-a (two rollout restarts,
// addon.sh restart, a state read between them and one after, during the traffic), no
// swap (its failed requests are reported, not failed on; a client that ended before the
// last restart settled fails it, as it fails a swap row).
//
// Build tag cluster; reads $CLUSTER_ADMIN_KUBECONFIG, $CLUSTER_ADDON_SH, $SWAP_WAY,
// $SWAP_ROW, $SWAP_REPORT (Markdown rows appended), $SWAP_OUT (node states, the
// requests as a results.Run for the plot), $SWAP_DURATION (the client's run, default
// 600s). hack/cluster/scenario-swap.sh runs it.
package swap
