//go:build tools

// Package coredns pins CoreDNS, the cluster DNS kubeadm v1.37.2 deploys
// (registry.k8s.io/coredns/coredns:v1.14.6, cmd/kubeadm/app/constants.CoreDNSVersion), for
// the e2e tests that resolve Service names. A module of its own: its dependencies (client-go,
// grpc, otel at other versions) must not move those of hack/controlplane's binaries.
package coredns

import _ "github.com/coredns/coredns"
