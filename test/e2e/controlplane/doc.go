// Package controlplane checks the loopback control plane of hack/controlplane (etcd and
// kube-apiserver v1.37.2) with client-go: the e2e scenarios depend on it. Its test has
// the build tag e2e and reads the kubeconfig path from $CP_KUBECONFIG (written by
// hack/controlplane/up.sh into _output/controlplane/run/env); hack/controlplane/smoke.sh
// runs it.
package controlplane
