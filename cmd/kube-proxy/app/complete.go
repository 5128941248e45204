package app

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	"k8s.io/kube-proxy/config/v1alpha1"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
)

const modeIPVS = v1alpha1.ProxyMode("ipvs")

// emptyModeWarning: kubeadm writes mode "" by default, which upstream runs
// as iptables; swapping the image on such a cluster switches dataplanes.
const emptyModeWarning = `mode is empty: upstream kube-proxy runs iptables mode then (kubeadm's default), this binary runs ipvs. ` +
	`If this node ran upstream's iptables mode, its iptables rules (KUBE-SVC-*/KUBE-SEP-* chains, filter KUBE-SERVICES rejects ` +
	`for Services without endpoints) stay until "kube-proxy --cleanup" runs, as with upstream's ipvs mode; set mode: ipvs to make the choice explicit`

// complete resolves the configuration the way upstream does: without
// --config the flags apply over the defaults; with --config the file wins,
// except for the logging flags, --hostname-override and the flags that
// are not part of the file (--master, --cleanup, --write-config-to, ...).
// Then it applies the feature gates to gate and validates.
func (o *Options) complete(logger klog.Logger, fs *pflag.FlagSet, gate featuregate.MutableVersionedFeatureGate) error {
	if o.ConfigFile == "" && o.WriteConfigTo == "" {
		o.config.HealthzBindAddress = addressFromPortFlag(o.config.HealthzBindAddress, o.healthzPort)
		o.config.MetricsBindAddress = addressFromPortFlag(o.config.MetricsBindAddress, o.metricsPort)
	}
	if o.ConfigFile != "" {
		cfg, err := loadConfigFile(logger, o.ConfigFile)
		if err != nil {
			return err
		}
		if err := copyLoggingFlags(fs, &cfg.Logging); err != nil {
			return err
		}
		o.config = cfg
	} else {
		o.applyFlagsWithoutField(fs)
	}
	if err := o.applyHostnameOverride(); err != nil {
		return err
	}
	if err := checkMode(o.config.Mode, o.source()); err != nil {
		return err
	}
	if o.config.Mode == "" {
		o.warnings = append(o.warnings, emptyModeWarning)
	}
	o.config.Mode = modeIPVS
	if o.config.DetectLocalMode == "" {
		o.config.DetectLocalMode = localModeClusterCIDR
	}
	if err := setFeatureGates(gate, o.config.FeatureGates, o.fieldSource("featureGates", "--feature-gates")); err != nil {
		return err
	}
	if !gate.Enabled(kubeProxyIPVS) {
		logger.Info("Warning: feature gate KubeProxyIPVS is disabled; this binary serves ipvs regardless")
	}
	return o.describe(validate(o.config, gate), fs)
}

// addressFromPortFlag applies the deprecated --healthz-port/--metrics-port:
// 0 disables the server, otherwise the port is added if the address has none.
func addressFromPortFlag(addr string, port int32) string {
	if port == 0 {
		return ""
	}
	return proxyutil.AppendPortIfNeeded(addr, port)
}

// applyFlagsWithoutField copies the flags whose configuration field depends
// on the mode: the ipvs sync periods always apply (they are what this
// binary runs with); the iptables ones are kept only for --write-config-to.
func (o *Options) applyFlagsWithoutField(fs *pflag.FlagSet) {
	o.config.IPVS.SyncPeriod.Duration = o.ipvsSyncPeriod
	o.config.IPVS.MinSyncPeriod.Duration = o.ipvsMinSyncPeriod
	if fs.Changed("iptables-sync-period") {
		o.config.IPTables.SyncPeriod.Duration = o.iptablesSyncPeriod
	}
	if fs.Changed("iptables-min-sync-period") {
		o.config.IPTables.MinSyncPeriod.Duration = o.iptablesMinSyncPeriod
	}
	if fs.Changed("cluster-cidr") {
		o.config.ClusterCIDR = o.clusterCIDR
	}
}

// applyHostnameOverride: the flag wins over the file (kubeadm passes
// --hostname-override=$(NODE_NAME) next to --config).
func (o *Options) applyHostnameOverride() error {
	if o.hostnameOverride == "" {
		return nil
	}
	name := strings.TrimSpace(o.hostnameOverride)
	if name == "" {
		return fmt.Errorf("--hostname-override: empty hostname-override is invalid")
	}
	o.config.HostnameOverride = strings.ToLower(name)
	return nil
}

// checkMode refuses every mode but ipvs (or empty, which means ipvs here).
func checkMode(mode v1alpha1.ProxyMode, source string) error {
	if mode == "" || mode == modeIPVS {
		return nil
	}
	return fmt.Errorf("%s: proxy mode %q is not supported: this kube-proxy only serves ipvs (set mode to \"ipvs\" or leave it empty)", source, mode)
}

// copyLoggingFlags gives the logging flags that were set on the command
// line priority over the file's logging section; -vmodule entries from the
// flag come before the file's.
func copyLoggingFlags(from *pflag.FlagSet, to *logsapi.LoggingConfiguration) error {
	fileVModule := to.VModule
	to.VModule = nil
	target := pflag.NewFlagSet("logging", pflag.ContinueOnError)
	logsapi.AddFlags(to, target)
	var err error
	target.VisitAll(func(f *pflag.Flag) {
		set := from.Lookup(f.Name)
		if err != nil || set == nil || !set.Changed {
			return
		}
		if setErr := f.Value.Set(set.Value.String()); setErr != nil {
			err = fmt.Errorf("--%s: %w", f.Name, setErr)
		}
	})
	to.VModule = append(to.VModule, fileVModule...)
	return err
}

// source names where the configuration came from, for error messages.
func (o *Options) source() string {
	if o.ConfigFile != "" {
		return "config file " + o.ConfigFile + ": mode"
	}
	return "--proxy-mode"
}

func (o *Options) fieldSource(fieldName, flag string) string {
	if o.ConfigFile != "" {
		return "config file " + o.ConfigFile + ": " + fieldName
	}
	return flag
}

// describe turns validation errors into one error on one line, naming the
// file and fields, or the flags when there is no file.
func (o *Options) describe(errs field.ErrorList, fs *pflag.FlagSet) error {
	if len(errs) == 0 {
		return nil
	}
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		if o.ConfigFile == "" {
			if msg := o.minSyncPeriodAlone(e, fs); msg != "" {
				parts = append(parts, msg)
				continue
			}
			if flag := flagForField(e.Field); flag != "" {
				parts = append(parts, flag+": "+e.Error())
				continue
			}
		}
		parts = append(parts, e.Error())
	}
	where := "invalid command line"
	if o.ConfigFile != "" {
		where = "config file " + o.ConfigFile
	}
	return fmt.Errorf("%s: %s", where, strings.Join(parts, "; "))
}

// minSyncPeriodAlone rewrites upstream's "ipvs.syncPeriod must be greater
// than or equal to ipvs.minSyncPeriod" when only --ipvs-min-sync-period was
// given: the flag to blame is that one, against the default sync period.
func (o *Options) minSyncPeriodAlone(e *field.Error, fs *pflag.FlagSet) string {
	if e.Field != "ipvs.syncPeriod" || !strings.Contains(e.Detail, "minSyncPeriod") ||
		fs.Changed("ipvs-sync-period") || !fs.Changed("ipvs-min-sync-period") {
		return ""
	}
	return fmt.Sprintf("--ipvs-min-sync-period: %s must be less than or equal to the sync period, %s (the default of --ipvs-sync-period, not given)",
		o.config.IPVS.MinSyncPeriod.Duration, o.config.IPVS.SyncPeriod.Duration)
}

// flagForField names the flag that sets a configuration field.
func flagForField(path string) string {
	flags := map[string]string{
		"bindAddress": "--bind-address", "healthzBindAddress": "--healthz-bind-address",
		"metricsBindAddress": "--metrics-bind-address", "nodePortAddresses": "--nodeport-addresses",
		"clusterCIDR": "--cluster-cidr", "detectLocalMode": "--detect-local-mode",
		"detectLocal.bridgeInterface": "--pod-bridge-interface", "detectLocal.interfaceNamePrefix": "--pod-interface-name-prefix",
		"ipvs.syncPeriod": "--ipvs-sync-period", "ipvs.minSyncPeriod": "--ipvs-min-sync-period",
		"ipvs.excludeCIDRs": "--ipvs-exclude-cidrs", "ipvs.tcpTimeout": "--ipvs-tcp-timeout",
		"ipvs.tcpFinTimeout": "--ipvs-tcpfin-timeout", "ipvs.udpTimeout": "--ipvs-udp-timeout",
		"iptables.masqueradeBit": "--iptables-masquerade-bit", "oomScoreAdj": "--oom-score-adj",
		"conntrack.maxPerCore": "--conntrack-max-per-core", "conntrack.min": "--conntrack-min",
		"conntrack.tcpEstablishedTimeout": "--conntrack-tcp-timeout-established",
		"conntrack.tcpCloseWaitTimeout":   "--conntrack-tcp-timeout-close-wait",
		"conntrack.udpTimeout":            "--conntrack-udp-timeout", "conntrack.udpStreamTimeout": "--conntrack-udp-timeout-stream",
		"clientConnection.burst": "--kube-api-burst", "configSyncPeriod": "--config-sync-period",
		"showHiddenMetricsForVersion": "--show-hidden-metrics-for-version", "logging.format": "--logging-format",
	}
	// "ipvs.excludeCIDRs[2]" is set by the flag of "ipvs.excludeCIDRs".
	if i := strings.LastIndex(path, "["); i > 0 && strings.HasSuffix(path, "]") {
		path = path[:i]
	}
	return flags[path]
}
