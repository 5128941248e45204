package app

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	netutils "k8s.io/utils/net"
	"k8s.io/utils/ptr"
)

// Upstream's well-known values (k8s.io/kubernetes/pkg/cluster/ports and
// pkg/kubelet/qos), kept here so the binary does not link those packages.
const (
	defaultHealthzPort = 10256
	defaultMetricsPort = 10249
	defaultOOMScoreAdj = -999
	defaultSyncPeriod  = 30 * time.Second
	defaultMinSync     = time.Second
	defaultMasqBit     = 14
)

// setDefaults fills every unset field the way upstream's
// SetDefaults_KubeProxyConfiguration does (defaults_test.go checks it
// field by field against upstream).
func setDefaults(c *v1alpha1.KubeProxyConfiguration) {
	if c.BindAddress == "" {
		c.BindAddress = "0.0.0.0"
	}
	setDefaultServerAddresses(c)
	setDefaultSyncPeriods(c)
	setDefaultConntrack(&c.Conntrack)
	if c.OOMScoreAdj == nil {
		c.OOMScoreAdj = ptr.To[int32](defaultOOMScoreAdj)
	}
	if c.IPTables.LocalhostNodePorts == nil {
		c.IPTables.LocalhostNodePorts = ptr.To(true)
	}
	if c.IPTables.MasqueradeBit == nil {
		c.IPTables.MasqueradeBit = ptr.To[int32](defaultMasqBit)
	}
	if c.NFTables.MasqueradeBit == nil {
		c.NFTables.MasqueradeBit = ptr.To[int32](defaultMasqBit)
	}
	if c.ConfigSyncPeriod.Duration == 0 {
		c.ConfigSyncPeriod.Duration = 15 * time.Minute
	}
	setDefaultClientConnection(c)
	if c.FeatureGates == nil {
		c.FeatureGates = map[string]bool{}
	}
	logsapi.SetRecommendedLoggingConfiguration(&c.Logging)
}

// setDefaultServerAddresses derives the healthz and metrics addresses from
// the bind address's family and adds the default port where it is missing.
func setDefaultServerAddresses(c *v1alpha1.KubeProxyConfiguration) {
	healthzHost, metricsHost := "[::]", "[::1]"
	if netutils.ParseIPSloppy(c.BindAddress).To4() != nil {
		healthzHost, metricsHost = "0.0.0.0", "127.0.0.1"
	}
	if c.HealthzBindAddress == "" {
		c.HealthzBindAddress = fmt.Sprintf("%s:%d", healthzHost, defaultHealthzPort)
	} else {
		c.HealthzBindAddress = proxyutil.AppendPortIfNeeded(c.HealthzBindAddress, defaultHealthzPort)
	}
	if c.MetricsBindAddress == "" {
		c.MetricsBindAddress = fmt.Sprintf("%s:%d", metricsHost, defaultMetricsPort)
	} else {
		c.MetricsBindAddress = proxyutil.AppendPortIfNeeded(c.MetricsBindAddress, defaultMetricsPort)
	}
}

// setDefaultSyncPeriods: ipvs.minSyncPeriod has no default upstream (0).
func setDefaultSyncPeriods(c *v1alpha1.KubeProxyConfiguration) {
	defaultDuration(&c.IPTables.SyncPeriod, defaultSyncPeriod)
	defaultDuration(&c.IPTables.MinSyncPeriod, defaultMinSync)
	defaultDuration(&c.IPVS.SyncPeriod, defaultSyncPeriod)
	defaultDuration(&c.NFTables.SyncPeriod, defaultSyncPeriod)
	defaultDuration(&c.NFTables.MinSyncPeriod, defaultMinSync)
}

func setDefaultConntrack(ct *v1alpha1.KubeProxyConntrackConfiguration) {
	if ct.MaxPerCore == nil {
		ct.MaxPerCore = ptr.To[int32](32 * 1024)
	}
	if ct.Min == nil {
		ct.Min = ptr.To[int32](128 * 1024)
	}
	if ct.TCPEstablishedTimeout == nil {
		ct.TCPEstablishedTimeout = &metav1.Duration{Duration: 24 * time.Hour}
	}
	if ct.TCPCloseWaitTimeout == nil {
		ct.TCPCloseWaitTimeout = &metav1.Duration{Duration: time.Hour}
	}
}

func setDefaultClientConnection(c *v1alpha1.KubeProxyConfiguration) {
	cc := &c.ClientConnection
	if cc.ContentType == "" {
		cc.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if cc.QPS == 0 {
		cc.QPS = 5
	}
	if cc.Burst == 0 {
		cc.Burst = 10
	}
}

func defaultDuration(d *metav1.Duration, value time.Duration) {
	if d.Duration == 0 {
		d.Duration = value
	}
}
