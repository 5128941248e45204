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
// cut, and node-a's state (IPVS table, iptables rules of both backends, ipset names)
// before the swap, after it, after the gate, compared with $SWAP_BASELINE (node-a's
// state with ours alone, saved by TestBaseline) when there is one.
//
// Build tag cluster; reads $CLUSTER_ADMIN_KUBECONFIG, $CLUSTER_ADDON_SH, $SWAP_WAY,
// $SWAP_ROW, $SWAP_REPORT (Markdown rows appended), $SWAP_OUT (node states, the
// requests as a results.Run for the plot), $SWAP_DURATION (the client's run, default
// 600s). hack/cluster/scenario-swap.sh runs it.
package swap
