// Package gate is scenario 4 of issue 13 on the real cluster (make cluster): the feature
// gate and the Service annotation end to end. kube-proxy runs as kubeadm's addon, made
// with the gate in kubeadm's KubeProxyConfiguration (hack/cluster/addon.sh patch) or
// without it (patch no-gate). The test checks that kube-proxy on node-a reports the gate
// as configured, in its /configz (read from a pod on node-a's host network, where the
// metrics server listens on 127.0.0.1:10249) and in its log ("Using ipvs Proxier" ...
// immediateTermination), then runs two echo Services side by side, each with two
// test-server pods on node-b: "annotated" carries ipvs-proxy.kubernetes.io/termination-policy
// set against the gate (graceful with the gate on, immediate with it off), "plain" none.
// A client pod on node-a holds one long-lived connection to each Service (rolling-client
// hold, a line every 200 ms); the test takes the pod each connection reached out of its
// Service (a label change: the pod keeps running, its endpoint leaves the EndpointSlice)
// and reads node-a's IPVS watcher: under the graceful policy the real server must stay at
// weight 0 while the connection is open and the connection keep answering; under the
// immediate policy it must be deleted (the connection's fate is reported).
//
// Build tag cluster; reads $CLUSTER_ADMIN_KUBECONFIG, $GATE_EXPECT ("on" or "off": the gate
// the addon was made with), $GATE_ROW (the row's name) and $GATE_REPORT (a Markdown file the
// rows are appended to). hack/cluster/scenario-gate.sh runs it.
package gate
