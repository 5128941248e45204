package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	componentbaseconfigv1alpha1 "k8s.io/component-base/config/v1alpha1"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	"k8s.io/kubernetes/pkg/proxy"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	proxyconntrack "k8s.io/kubernetes/pkg/proxy/conntrack"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/nftables"
	ipvsproxy "github.com/ipvs-proxy/ipvs-proxy/pkg/proxy/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// Environment is everything the command takes from the host, the kernel and
// the cluster; tests replace parts of it.
type Environment struct {
	// NewClient connects to the API server (kubeconfig, --master or in-cluster).
	NewClient func(cc componentbaseconfigv1alpha1.ClientConnectionConfiguration, master string) (clientset.Interface, error)
	// KernelDeps returns the kernel interfaces for one IP family; Recorder,
	// health servers and metrics are filled in by the caller. With an error,
	// the interfaces that could be made are returned (IPTables at least).
	KernelDeps func(family v1.IPFamily) (ipvsproxy.Deps, error)
	NewProxier func(ctx context.Context, cfg ipvsproxy.Config, deps ipvsproxy.Deps) (proxy.Provider, error)
	// CleanupLeftovers is --cleanup for one family.
	CleanupLeftovers func(ctx context.Context, deps ipvsproxy.Deps) error
	// NFTables deletes upstream's nftables-mode tables (at start and in
	// --cleanup, as upstream's ipvs mode does).
	NFTables nftables.Interface
	// Geteuid is the effective user id (--cleanup's permission hint).
	Geteuid func() int
	// SupportedFamilies says which IP families the host can proxy.
	SupportedFamilies   func(logger klog.Logger) (ipv4, ipv6 bool)
	SetConntrackSysctls func(ctx context.Context, ct *v1alpha1.KubeProxyConntrackConfiguration) error
	SetOOMScoreAdj      func(score int32) error
	Hostname            func() (string, error)
	// ApplyLogging configures klog from the logging section (once per process).
	ApplyLogging func(c *logsapi.LoggingConfiguration, gate featuregate.FeatureGate) error
	// RegisterMetrics registers upstream's kubeproxy_* metrics, ours and the
	// feature gate metrics where MetricsHandler serves them.
	RegisterMetrics func(ours *ipvsproxy.Metrics, gate featuregate.MutableVersionedFeatureGate)
	MetricsHandler  http.Handler
}

// DefaultEnvironment is the real host: netlink, /proc, iptables binaries,
// the legacy metrics registry.
func DefaultEnvironment() *Environment {
	return &Environment{
		NewClient:  newClient,
		KernelDeps: newKernelDeps(),
		NewProxier: func(ctx context.Context, cfg ipvsproxy.Config, deps ipvsproxy.Deps) (proxy.Provider, error) {
			p, err := ipvsproxy.NewProxier(ctx, cfg, deps)
			if err != nil {
				return nil, err
			}
			return p, nil
		},
		CleanupLeftovers:    ipvsproxy.CleanupLeftovers,
		NFTables:            nftables.New(),
		Geteuid:             os.Geteuid,
		SupportedFamilies:   supportedFamilies,
		SetConntrackSysctls: setConntrackSysctls,
		SetOOMScoreAdj:      setOOMScoreAdj,
		Hostname:            os.Hostname,
		ApplyLogging:        applyLogging,
		RegisterMetrics:     registerLegacyMetrics,
		MetricsHandler:      legacyregistry.Handler(),
	}
}

// newClient builds the API client like upstream: the kubeconfig file, with
// the server replaced by master when given; in-cluster config without both.
func newClient(cc componentbaseconfigv1alpha1.ClientConnectionConfiguration, master string) (clientset.Interface, error) {
	var restConfig *rest.Config
	var err error
	if cc.Kubeconfig == "" && master == "" {
		restConfig, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no kubeconfig and no --master given, and in-cluster config failed: %w", err)
		}
	} else {
		restConfig, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: cc.Kubeconfig},
			&clientcmd.ConfigOverrides{ClusterInfo: clientcmdapi.Cluster{Server: master}}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", cc.Kubeconfig, err)
		}
	}
	restConfig.AcceptContentTypes = cc.AcceptContentTypes
	restConfig.ContentType = cc.ContentType
	restConfig.QPS = cc.QPS
	restConfig.Burst = int(cc.Burst)
	client, err := clientset.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", cc.Kubeconfig, err)
	}
	return client, nil
}

// newKernelDeps opens the IPVS netlink socket once and shares the
// family-neutral interfaces between both families. When IPVS cannot be
// opened it returns the error with every other interface filled in and
// IPVS nil (--cleanup goes on without it).
func newKernelDeps() func(v1.IPFamily) (ipvsproxy.Deps, error) {
	var once sync.Once
	var shared ipvsproxy.Deps
	var openErr error
	return func(family v1.IPFamily) (ipvsproxy.Deps, error) {
		once.Do(func() {
			var handle ipvs.Interface
			handle, openErr = ipvs.New()
			shared = ipvsproxy.Deps{
				IPVS: handle, IPSet: ipset.New(), NetDev: netdev.New(), Conntrack: conntrack.New(),
				Sysctl: sysctl.New(), KernelVersion: kernelVersion(),
			}
			if openErr != nil {
				shared.IPVS = nil
			}
		})
		deps := shared
		deps.IPTables = iptables.New(family == v1.IPv6Protocol)
		if openErr != nil {
			return deps, fmt.Errorf("open IPVS netlink socket: %w", openErr)
		}
		return deps, nil
	}
}

func kernelVersion() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// supportedFamilies: a family is usable when its iptables binary exists
// and, for IPv6, when the kernel has IPv6 enabled (upstream's checks).
func supportedFamilies(logger klog.Logger) (ipv4, ipv6 bool) {
	_, errV4 := exec.LookPath("iptables")
	_, errV6 := exec.LookPath("ip6tables")
	ipv4, ipv6 = errV4 == nil, errV6 == nil
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		logger.Info("No kernel support for family", "ipFamily", v1.IPv6Protocol)
		ipv6 = false
	} else if data, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6"); err == nil && strings.TrimSpace(string(data)) == "1" {
		logger.Info("Kernel support disabled for family", "ipFamily", v1.IPv6Protocol)
		ipv6 = false
	}
	return ipv4, ipv6
}

// setConntrackSysctls applies the conntrack section (nf_conntrack_max and
// timeouts) with upstream's code; the two structs are the same type.
func setConntrackSysctls(ctx context.Context, ct *v1alpha1.KubeProxyConntrackConfiguration) error {
	internal := kubeproxyconfig.KubeProxyConntrackConfiguration(*ct)
	return proxyconntrack.SetSysctls(ctx, &internal)
}

func setOOMScoreAdj(score int32) error {
	return os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(int(score))), 0o644)
}

func applyLogging(c *logsapi.LoggingConfiguration, gate featuregate.FeatureGate) error {
	logs.InitLogs()
	if err := logsapi.ValidateAndApplyAsField(c, gate, field.NewPath("logging")); err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	return nil
}

// legacyRegisterer adapts legacyregistry's functions to Metrics.Register.
type legacyRegisterer struct{}

func (legacyRegisterer) MustRegister(cs ...metrics.Registerable) { legacyregistry.MustRegister(cs...) }

func registerLegacyMetrics(ours *ipvsproxy.Metrics, gate featuregate.MutableVersionedFeatureGate) {
	ipvsproxy.RegisterUpstreamMetrics()
	ours.Register(legacyRegisterer{})
	registerBuildInfo(legacyRegisterer{}, version.Get())
	gate.AddMetrics()
}
