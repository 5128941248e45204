package app

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/kube-proxy/config/v1alpha1"
	netutils "k8s.io/utils/net"
)

// Local traffic detection modes and NodePort address keywords (upstream's).
const (
	localModeClusterCIDR         = v1alpha1.LocalMode("ClusterCIDR")
	localModeNodeCIDR            = v1alpha1.LocalMode("NodeCIDR")
	localModeBridgeInterface     = v1alpha1.LocalMode("BridgeInterface")
	localModeInterfaceNamePrefix = v1alpha1.LocalMode("InterfaceNamePrefix")

	nodePortPrimary   = "primary"
	nodePortLocalhost = "localhost"
	nodePortAll       = "all"
)

// validate checks what upstream's validation checks for a Linux ipvs
// configuration (validate_test.go compares the verdicts). Paths use the
// file's field names; the mode was checked before.
func validate(c *v1alpha1.KubeProxyConfiguration, gate featuregate.FeatureGate) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateRange(c.IPTables.MasqueradeBit, 0, 31, field.NewPath("iptables", "masqueradeBit"))...)
	errs = append(errs, validateIPVS(&c.IPVS, field.NewPath("ipvs"))...)
	errs = append(errs, validateConntrack(&c.Conntrack, field.NewPath("conntrack"))...)
	errs = append(errs, validateRange(c.OOMScoreAdj, -1000, 1000, field.NewPath("oomScoreAdj"))...)
	if c.ClientConnection.Burst < 0 {
		errs = append(errs, field.Invalid(field.NewPath("clientConnection", "burst"), c.ClientConnection.Burst, "must be greater than or equal to 0"))
	}
	if c.ConfigSyncPeriod.Duration <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("configSyncPeriod"), c.ConfigSyncPeriod.Duration.String(), "must be greater than 0"))
	}
	errs = append(errs, validateAddresses(c)...)
	for _, e := range metrics.ValidateShowHiddenMetricsVersion(c.ShowHiddenMetricsForVersion) {
		errs = append(errs, field.Invalid(field.NewPath("showHiddenMetricsForVersion"), c.ShowHiddenMetricsForVersion, e.Error()))
	}
	errs = append(errs, validateDetectLocal(c)...)
	errs = append(errs, logsapi.Validate(&c.Logging, gate, field.NewPath("logging"))...)
	return errs
}

func validateRange(v *int32, lo, hi int32, path *field.Path) field.ErrorList {
	if v != nil && (*v < lo || *v > hi) {
		return field.ErrorList{field.Invalid(path, *v, fmt.Sprintf("must be within the range [%d, %d]", lo, hi))}
	}
	return nil
}

func validateIPVS(ipvs *v1alpha1.KubeProxyIPVSConfiguration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ipvs.SyncPeriod.Duration <= 0 {
		errs = append(errs, field.Invalid(path.Child("syncPeriod"), ipvs.SyncPeriod.Duration.String(), "must be greater than 0"))
	}
	if ipvs.MinSyncPeriod.Duration < 0 {
		errs = append(errs, field.Invalid(path.Child("minSyncPeriod"), ipvs.MinSyncPeriod.Duration.String(), "must be greater than or equal to 0"))
	}
	if ipvs.MinSyncPeriod.Duration > ipvs.SyncPeriod.Duration {
		errs = append(errs, field.Invalid(path.Child("syncPeriod"), ipvs.SyncPeriod.Duration.String(), "must be greater than or equal to "+path.Child("minSyncPeriod").String()))
	}
	errs = append(errs, nonNegative(path.Child("tcpTimeout"), &ipvs.TCPTimeout)...)
	errs = append(errs, nonNegative(path.Child("tcpFinTimeout"), &ipvs.TCPFinTimeout)...)
	errs = append(errs, nonNegative(path.Child("udpTimeout"), &ipvs.UDPTimeout)...)
	for i, cidr := range ipvs.ExcludeCIDRs {
		if _, _, err := netutils.ParseCIDRSloppy(cidr); err != nil {
			errs = append(errs, field.Invalid(path.Child("excludeCIDRs").Index(i), cidr, "must be a valid CIDR"))
		}
	}
	return errs
}

func validateConntrack(ct *v1alpha1.KubeProxyConntrackConfiguration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateRange(ct.MaxPerCore, 0, math.MaxInt32, path.Child("maxPerCore"))...)
	errs = append(errs, validateRange(ct.Min, 0, math.MaxInt32, path.Child("min"))...)
	errs = append(errs, nonNegative(path.Child("tcpEstablishedTimeout"), ct.TCPEstablishedTimeout)...)
	errs = append(errs, nonNegative(path.Child("tcpCloseWaitTimeout"), ct.TCPCloseWaitTimeout)...)
	errs = append(errs, nonNegative(path.Child("udpTimeout"), &ct.UDPTimeout)...)
	errs = append(errs, nonNegative(path.Child("udpStreamTimeout"), &ct.UDPStreamTimeout)...)
	return errs
}

func nonNegative(path *field.Path, d *metav1.Duration) field.ErrorList {
	if d != nil && d.Duration < 0 {
		return field.ErrorList{field.Invalid(path, d.Duration.String(), "must be greater than or equal to 0")}
	}
	return nil
}

func validateAddresses(c *v1alpha1.KubeProxyConfiguration) field.ErrorList {
	var errs field.ErrorList
	if netutils.ParseIPSloppy(c.BindAddress) == nil {
		errs = append(errs, field.Invalid(field.NewPath("bindAddress"), c.BindAddress, "not a valid textual representation of an IP address"))
	}
	if c.HealthzBindAddress != "" {
		errs = append(errs, validateHostPort(c.HealthzBindAddress, field.NewPath("healthzBindAddress"))...)
	}
	errs = append(errs, validateHostPort(c.MetricsBindAddress, field.NewPath("metricsBindAddress"))...)
	errs = append(errs, validateNodePortAddresses(c.NodePortAddresses, field.NewPath("nodePortAddresses"))...)
	return errs
}

func validateHostPort(hostPort string, path *field.Path) field.ErrorList {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return field.ErrorList{field.Invalid(path, hostPort, "must be IP:port")}
	}
	var errs field.ErrorList
	if netutils.ParseIPSloppy(host) == nil {
		errs = append(errs, field.Invalid(path, host, "must be a valid IP"))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, field.Invalid(path, port, "must be a valid port"))
	}
	return errs
}

func validateNodePortAddresses(addrs []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, addr := range addrs {
		switch addr {
		case nodePortPrimary, nodePortLocalhost, nodePortAll:
			if seen[addr] {
				errs = append(errs, field.Duplicate(path.Index(i), addr))
			}
			seen[addr] = true
			continue
		}
		if _, _, err := netutils.ParseCIDRSloppy(addr); err != nil {
			errs = append(errs, field.Invalid(path.Index(i), addr, "must be a valid CIDR or one of the keywords 'primary', 'localhost', 'all'"))
		}
	}
	return errs
}

func validateDetectLocal(c *v1alpha1.KubeProxyConfiguration) field.ErrorList {
	path := field.NewPath("detectLocalMode")
	switch c.DetectLocalMode {
	case localModeBridgeInterface:
		return requireNonEmpty(c.DetectLocal.BridgeInterface, field.NewPath("detectLocal", "bridgeInterface"))
	case localModeInterfaceNamePrefix:
		return requireNonEmpty(c.DetectLocal.InterfaceNamePrefix, field.NewPath("detectLocal", "interfaceNamePrefix"))
	case localModeClusterCIDR:
		if c.ClusterCIDR == "" {
			return nil
		}
		return validateClusterCIDRs(strings.Split(c.ClusterCIDR, ","), field.NewPath("clusterCIDR"))
	case localModeNodeCIDR, "":
		return nil
	}
	valid := []string{string(localModeClusterCIDR), string(localModeNodeCIDR), string(localModeBridgeInterface), string(localModeInterfaceNamePrefix), ""}
	return field.ErrorList{field.NotSupported(path, c.DetectLocalMode, valid)}
}

func requireNonEmpty(value string, path *field.Path) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Invalid(path, value, "must not be empty")}
	}
	return nil
}

// validateClusterCIDRs accepts one CIDR or a dual-stack pair.
func validateClusterCIDRs(cidrs []string, path *field.Path) field.ErrorList {
	const pairMsg = "must be a either a single CIDR or dual-stack pair of CIDRs (e.g. [10.100.0.0/16, fde4:8dba:82e1::/48]"
	if len(cidrs) > 2 {
		return field.ErrorList{field.Invalid(path, strings.Join(cidrs, ","), pairMsg)}
	}
	var errs field.ErrorList
	for i, cidr := range cidrs {
		if _, _, err := netutils.ParseCIDRSloppy(cidr); err != nil {
			errs = append(errs, field.Invalid(path.Index(i), cidr, "must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)"))
		}
	}
	if len(errs) == 0 && len(cidrs) == 2 {
		if dual, err := netutils.IsDualStackCIDRStrings(cidrs); err == nil && !dual {
			errs = append(errs, field.Invalid(path, strings.Join(cidrs, ","), pairMsg))
		}
	}
	return errs
}
