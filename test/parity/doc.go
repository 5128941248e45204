// Package parity holds the differential test of ipvs-proxy's IPVS proxier
// against upstream kube-proxy's (k8s.io/kubernetes/pkg/proxy/ipvs v1.37.2):
// both are fed the same Services, EndpointSlices and node, and the IPVS
// table, the addresses on kube-ipvs0 and the ipset members they leave are
// compared after every sync. See docs/parity.md.
package parity
