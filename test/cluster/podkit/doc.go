// Package podkit holds the pieces the real-cluster scenarios (test/cluster/gate, swap,
// nodeloss) share, all through client-go against the cluster make cluster brings up:
// test-server pods and Services, the IPVS watcher on a node's host network
// (rolling-client watch) read as it prints, long-lived echo connections (rolling-client
// hold), one-shot pods whose log is the answer (a node's /configz, its iptables and
// ipsets), and the kube-proxy pods. Images are the ones hack/cluster/images.sh imports
// into every node: never pulled.
package podkit
