package app

import (
	"strings"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kube-proxy/config/v1alpha1"
)

// Options are the command line: the flags that map onto the
// KubeProxyConfiguration write into config; the others are kept apart.
type Options struct {
	ConfigFile    string
	WriteConfigTo string
	Cleanup       bool
	InitOnly      bool

	// config starts as the defaults; flags write into it. With --config it
	// is replaced by the file (see complete).
	config *v1alpha1.KubeProxyConfiguration

	// Flags that have no field of their own in the configuration, or whose
	// field depends on the mode.
	master                string
	hostnameOverride      string
	clusterCIDR           string
	healthzPort           int32
	metricsPort           int32
	iptablesSyncPeriod    time.Duration
	iptablesMinSyncPeriod time.Duration
	ipvsSyncPeriod        time.Duration
	ipvsMinSyncPeriod     time.Duration
	version               versionValue

	// warnings about the configuration, logged at start and served in /configz.
	warnings []string
}

// newOptions returns options holding the defaults, as the flags show them.
func newOptions() *Options {
	cfg := &v1alpha1.KubeProxyConfiguration{}
	setDefaults(cfg)
	return &Options{
		config:                cfg,
		healthzPort:           defaultHealthzPort,
		metricsPort:           defaultMetricsPort,
		iptablesSyncPeriod:    cfg.IPTables.SyncPeriod.Duration,
		iptablesMinSyncPeriod: cfg.IPTables.MinSyncPeriod.Duration,
		// Without a config file upstream starts from one sync period for
		// every mode, the iptables defaults (30s, 1s).
		ipvsSyncPeriod:    cfg.IPTables.SyncPeriod.Duration,
		ipvsMinSyncPeriod: cfg.IPTables.MinSyncPeriod.Duration,
		version:           versionOff,
	}
}

// addFlags registers upstream v1.37's kube-proxy flags (Linux) on fs. Flags
// of other modes are accepted and kept in the configuration, unused.
func (o *Options) addFlags(fs *pflag.FlagSet, gate featuregate.FeatureGate) {
	o.addGeneralFlags(fs, gate)
	o.addAddressFlags(fs)
	o.addIPTablesFlags(fs)
	o.addIPVSFlags(fs)
	o.addLocalDetectionFlags(fs)
	o.addConntrackFlags(fs)
	o.addDeprecatedFlags(fs)
	logsapi.AddFlags(&o.config.Logging, fs)
}

const ignoredWithConfig = " This parameter is ignored if a config file is specified by --config."

func (o *Options) addGeneralFlags(fs *pflag.FlagSet, gate featuregate.FeatureGate) {
	c := o.config
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "The path to the configuration file.")
	fs.StringVar(&o.WriteConfigTo, "write-config-to", o.WriteConfigTo, "If set, write the default configuration values to this file and exit.")
	fs.BoolVar(&o.Cleanup, "cleanup", o.Cleanup, "If true cleanup iptables and ipvs rules and exit.")
	fs.BoolVar(&o.InitOnly, "init-only", o.InitOnly, "If true, perform any initialization steps that must be done with full root privileges, and then exit.")
	fs.Var(&o.version, "version", "--version, --version=raw prints version information and quits")
	fs.Lookup("version").NoOptDefVal = string(versionOn)
	fs.Var(cliflag.NewMapStringBool(&c.FeatureGates), "feature-gates", "A set of key=value pairs that describe feature gates for alpha/experimental features. Options are:\n"+
		strings.Join(gate.KnownFeatures(), "\n")+"\n"+strings.TrimSpace(ignoredWithConfig))
	fs.StringVar(&c.ClientConnection.Kubeconfig, "kubeconfig", c.ClientConnection.Kubeconfig, "Path to kubeconfig file with authorization information (the master location can be overridden by the master flag).")
	fs.StringVar(&o.master, "master", o.master, "The address of the Kubernetes API server (overrides any value in kubeconfig)")
	fs.StringVar(&c.ClientConnection.ContentType, "kube-api-content-type", c.ClientConnection.ContentType, "Content type of requests sent to apiserver.")
	fs.Int32Var(&c.ClientConnection.Burst, "kube-api-burst", c.ClientConnection.Burst, "Burst to use while talking with kubernetes apiserver")
	fs.Float32Var(&c.ClientConnection.QPS, "kube-api-qps", c.ClientConnection.QPS, "QPS to use while talking with kubernetes apiserver")
	fs.StringVar(&o.hostnameOverride, "hostname-override", o.hostnameOverride, "If non-empty, will be used as the name of the Node that kube-proxy is running on. If unset, the node name is assumed to be the same as the node's hostname.")
	fs.Var(namedString[v1alpha1.ProxyMode]{&c.Mode, "ProxyMode"}, "proxy-mode", "Which proxy mode to use: this binary only serves 'ipvs' (an empty value means ipvs)."+ignoredWithConfig)
	fs.BoolVar(&c.EnableProfiling, "profiling", c.EnableProfiling, "If true enables profiling via web interface on /debug/pprof handler."+ignoredWithConfig)
	fs.StringVar(&c.ShowHiddenMetricsForVersion, "show-hidden-metrics-for-version", c.ShowHiddenMetricsForVersion, "The previous version for which you want to show hidden metrics. Only the previous minor version is meaningful, other values will not be allowed. The format is <major>.<minor>, e.g.: '1.16'."+ignoredWithConfig)
	fs.DurationVar(&c.ConfigSyncPeriod.Duration, "config-sync-period", c.ConfigSyncPeriod.Duration, "How often configuration from the apiserver is refreshed.  Must be greater than 0.")
	fs.Int32Var(c.OOMScoreAdj, "oom-score-adj", *c.OOMScoreAdj, "The oom-score-adj value for kube-proxy process. Values must be within the range [-1000, 1000]."+ignoredWithConfig)
}

func (o *Options) addAddressFlags(fs *pflag.FlagSet) {
	c := o.config
	fs.Var(ipValue{&c.BindAddress}, "bind-address", "Overrides kube-proxy's idea of what its node's primary IP is. kube-proxy does not bind any socket to this IP."+ignoredWithConfig)
	fs.Var(ipPortValue{&c.HealthzBindAddress}, "healthz-bind-address", "The IP address and port for the health check server to serve on, defaulting to \"0.0.0.0:10256\"."+ignoredWithConfig)
	fs.Var(ipPortValue{&c.MetricsBindAddress}, "metrics-bind-address", "The IP address and port for the metrics server to serve on, defaulting to \"127.0.0.1:10249\". (Set to \"0.0.0.0:10249\" / \"[::]:10249\" to bind on all interfaces.)"+ignoredWithConfig)
	fs.BoolVar(&c.BindAddressHardFail, "bind-address-hard-fail", c.BindAddressHardFail, "If true kube-proxy will treat failure to bind to a port as fatal and exit")
	fs.StringSliceVar(&c.NodePortAddresses, "nodeport-addresses", c.NodePortAddresses, "A list of CIDR ranges and/or keywords ('primary', 'localhost', 'all'). NodePort services are only accessible on node IPs covered by the list. If unset, this defaults to 'all'."+ignoredWithConfig)
}

func (o *Options) addIPTablesFlags(fs *pflag.FlagSet) {
	c := o.config
	fs.Int32Var(c.IPTables.MasqueradeBit, "iptables-masquerade-bit", *c.IPTables.MasqueradeBit, "If using the iptables or ipvs proxy mode, the bit of the fwmark space to mark packets requiring SNAT with.  Must be within the range [0, 31].")
	fs.BoolVar(&c.IPTables.MasqueradeAll, "masquerade-all", c.IPTables.MasqueradeAll, "SNAT all traffic sent via Service cluster IPs. This may be required with some CNI plugins.")
	fs.BoolVar(c.IPTables.LocalhostNodePorts, "iptables-localhost-nodeports", *c.IPTables.LocalhostNodePorts, "Applies only to iptables mode; accepted and ignored.")
	fs.DurationVar(&o.iptablesSyncPeriod, "iptables-sync-period", o.iptablesSyncPeriod, "Applies only to iptables mode; accepted and ignored.")
	fs.DurationVar(&o.iptablesMinSyncPeriod, "iptables-min-sync-period", o.iptablesMinSyncPeriod, "Applies only to iptables mode; accepted and ignored.")
}

func (o *Options) addIPVSFlags(fs *pflag.FlagSet) {
	ipvs := &o.config.IPVS
	fs.DurationVar(&o.ipvsSyncPeriod, "ipvs-sync-period", o.ipvsSyncPeriod, "An interval (e.g. '5s', '1m', '2h22m') indicating how frequently various re-synchronizing and cleanup operations are performed. Must be greater than 0.")
	fs.DurationVar(&o.ipvsMinSyncPeriod, "ipvs-min-sync-period", o.ipvsMinSyncPeriod, "The minimum period between IPVS rule resyncs (e.g. '5s', '1m', '2h22m'). A value of 0 means every Service or EndpointSlice change will result in an immediate IPVS resync.")
	fs.StringVar(&ipvs.Scheduler, "ipvs-scheduler", ipvs.Scheduler, "The ipvs scheduler type when proxy mode is ipvs")
	fs.StringSliceVar(&ipvs.ExcludeCIDRs, "ipvs-exclude-cidrs", ipvs.ExcludeCIDRs, "A comma-separated list of CIDRs which the ipvs proxier should not touch when cleaning up IPVS rules.")
	fs.BoolVar(&ipvs.StrictARP, "ipvs-strict-arp", ipvs.StrictARP, "Enable strict ARP by setting arp_ignore to 1 and arp_announce to 2")
	fs.DurationVar(&ipvs.TCPTimeout.Duration, "ipvs-tcp-timeout", ipvs.TCPTimeout.Duration, "The timeout for idle IPVS TCP connections, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")
	fs.DurationVar(&ipvs.TCPFinTimeout.Duration, "ipvs-tcpfin-timeout", ipvs.TCPFinTimeout.Duration, "The timeout for IPVS TCP connections after receiving a FIN packet, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")
	fs.DurationVar(&ipvs.UDPTimeout.Duration, "ipvs-udp-timeout", ipvs.UDPTimeout.Duration, "The timeout for IPVS UDP packets, 0 to leave as-is. (e.g. '5s', '1m', '2h22m').")
}

func (o *Options) addLocalDetectionFlags(fs *pflag.FlagSet) {
	c := o.config
	fs.Var(namedString[v1alpha1.LocalMode]{&c.DetectLocalMode, "LocalMode"}, "detect-local-mode", "Mode to use to detect local traffic."+ignoredWithConfig)
	fs.StringVar(&c.DetectLocal.BridgeInterface, "pod-bridge-interface", c.DetectLocal.BridgeInterface, "A bridge interface name. When --detect-local-mode is set to BridgeInterface, kube-proxy will consider traffic to be local if it originates from this bridge.")
	fs.StringVar(&c.DetectLocal.InterfaceNamePrefix, "pod-interface-name-prefix", c.DetectLocal.InterfaceNamePrefix, "An interface name prefix. When --detect-local-mode is set to InterfaceNamePrefix, kube-proxy will consider traffic to be local if it originates from any interface whose name begins with this prefix.")
	fs.StringVar(&o.clusterCIDR, "cluster-cidr", c.ClusterCIDR, "The CIDR range of the pods in the cluster (a comma-separated dual-stack pair for dual-stack clusters). When --detect-local-mode is set to ClusterCIDR, kube-proxy will consider traffic to be local if its source IP is in this range."+ignoredWithConfig)
}

func (o *Options) addConntrackFlags(fs *pflag.FlagSet) {
	ct := &o.config.Conntrack
	fs.Int32Var(ct.MaxPerCore, "conntrack-max-per-core", *ct.MaxPerCore, "Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min).")
	fs.Int32Var(ct.Min, "conntrack-min", *ct.Min, "Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core (set conntrack-max-per-core=0 to leave the limit as-is).")
	fs.DurationVar(&ct.TCPEstablishedTimeout.Duration, "conntrack-tcp-timeout-established", ct.TCPEstablishedTimeout.Duration, "Idle timeout for established TCP connections (0 to leave as-is)")
	fs.DurationVar(&ct.TCPCloseWaitTimeout.Duration, "conntrack-tcp-timeout-close-wait", ct.TCPCloseWaitTimeout.Duration, "NAT timeout for TCP connections in the CLOSE_WAIT state")
	fs.BoolVar(&ct.TCPBeLiberal, "conntrack-tcp-be-liberal", ct.TCPBeLiberal, "Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1")
	fs.DurationVar(&ct.UDPTimeout.Duration, "conntrack-udp-timeout", ct.UDPTimeout.Duration, "Idle timeout for UNREPLIED UDP connections (0 to leave as-is)")
	fs.DurationVar(&ct.UDPStreamTimeout.Duration, "conntrack-udp-timeout-stream", ct.UDPStreamTimeout.Duration, "Idle timeout for ASSURED UDP connections (0 to leave as-is)")
}

func (o *Options) addDeprecatedFlags(fs *pflag.FlagSet) {
	fs.Int32Var(&o.healthzPort, "healthz-port", o.healthzPort, "The port to bind the health check server. Use 0 to disable.")
	_ = fs.MarkDeprecated("healthz-port", "This flag is deprecated and will be removed in a future release. Please use --healthz-bind-address instead.")
	fs.Int32Var(&o.metricsPort, "metrics-port", o.metricsPort, "The port to bind the metrics server. Use 0 to disable.")
	_ = fs.MarkDeprecated("metrics-port", "This flag is deprecated and will be removed in a future release. Please use --metrics-bind-address instead.")
}
