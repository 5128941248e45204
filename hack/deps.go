//go:build tools

// Package hack pins the libraries the project builds on, so that vendor/ holds
// them before the code that uses them lands.
package hack

import (
	_ "github.com/moby/ipvs"
	_ "github.com/vishvananda/netlink"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/api/discovery/v1"
	_ "k8s.io/client-go/informers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/client-go/tools/events"
	_ "k8s.io/component-base/featuregate"
	_ "k8s.io/component-base/logs"
	_ "k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/version"
	_ "k8s.io/klog/v2"
	_ "k8s.io/kube-proxy/config/v1alpha1"
	_ "k8s.io/kubernetes/pkg/proxy"
	_ "k8s.io/kubernetes/pkg/proxy/config"
	_ "k8s.io/kubernetes/pkg/proxy/conntrack"
	_ "k8s.io/kubernetes/pkg/proxy/healthcheck"
	_ "k8s.io/kubernetes/pkg/proxy/metrics"
	_ "k8s.io/kubernetes/pkg/proxy/util"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs/ipset"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs/ipset/testing"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs/testing"
	_ "k8s.io/kubernetes/pkg/proxy/ipvs/util/testing"
	_ "k8s.io/kubernetes/pkg/proxy/apis/config/v1alpha1"
	_ "k8s.io/kubernetes/pkg/util/iptables"
	_ "k8s.io/kubernetes/pkg/util/iptables/testing"
	_ "k8s.io/utils/exec"
	_ "k8s.io/utils/net"
	_ "github.com/spf13/pflag"
	_ "github.com/spf13/cobra"
)
