// Package controllers checks the real controllers of the host control plane
// (hack/cluster/controlplane-up.sh): the Deployment and ReplicaSet controllers create
// pods, kube-scheduler binds them to a Ready node, node IPAM gives a node a pod CIDR of
// each family, and the EndpointSlice controller publishes pods' readiness and
// termination. No kubelet runs here: the test creates the Node and, for the
// EndpointSlice case, writes pod status as a kubelet would. hack/cluster/test-host.sh
// runs it.
package controllers
