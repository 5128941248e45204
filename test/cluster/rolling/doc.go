// Package rolling is scenario 1 of issue 13 on the real cluster (make cluster): a
// Deployment of 3 test-server replicas behind a ClusterIP Service, a client pod on node-a
// that sends short requests through the VIP from a pool of reused source ports
// (cmd/rolling-client), and `kubectl rollout restart` while it runs. The real
// kube-controller-manager replaces the pods, the real kubelets stop them, the
// EndpointSlice controller updates the slices, and kube-proxy (the DaemonSet's pod on
// node-a) updates IPVS. A watcher pod on node-a's host network records when each real
// server leaves IPVS; the test reports requests, failed, slow (>1 s), the failure window,
// and the time from each pod's deletion (its deletionTimestamp seen by the test's watch)
// to its real server's removal (the watcher's line read by the test: both host clocks),
// and from the pod object's removal (the kubelet done, the endpoint dropped) to it.
//
// Build tag cluster; reads $CLUSTER_ADMIN_KUBECONFIG and $ROLLING_ROW (the row's name in
// the report, e.g. "ours, gate on"). hack/cluster/scenario-rolling.sh runs it.
package rolling
