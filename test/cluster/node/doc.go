// Package node checks the cluster's node VMs (hack/cluster/node-up.sh): each runs the real
// kubelet v1.37.2 with containerd, registers as a Ready Node with the pod CIDRs of the node
// plan, runs pods through the bridge CNI, and pods reach pods on the same node and across
// the nodes' L2 link, over IPv4 and (when the nodes are dual-stack) IPv6, from the pod
// network and from the node's own network namespace.
//
// The test has the build tag cluster and reads $CP_KUBECONFIG (the host's admin kubeconfig,
// hack/controlplane/up.sh) and $CLUSTER_NODES (the node names, e.g. "node-a node-b");
// hack/cluster/node-test.sh brings the nodes up, runs it and tears them down.
package node
