package app

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/nftables"
)

// nftablesModeTable is the table upstream's nftables mode keeps all of its
// rules in, in the ip and ip6 families.
const nftablesModeTable = "kube-proxy"

// cleanupLeftovers is --cleanup: like upstream's, it removes every mode's
// leftovers whatever the configured mode: for each family the host
// supports, IPVS, the dummy device, the iptables rules of the ipvs and
// iptables modes and the ipsets; then the nftables mode's tables. Every
// step is attempted and logged, whatever failed before; the error names
// each failure, with a permission hint when not run as root or refused.
func cleanupLeftovers(ctx context.Context, env *Environment) error {
	ipv4, ipv6 := env.SupportedFamilies(klog.FromContext(ctx))
	var errs []error
	var families []v1.IPFamily
	if ipv4 {
		families = append(families, v1.IPv4Protocol)
	}
	if ipv6 {
		families = append(families, v1.IPv6Protocol)
	}
	for _, family := range families {
		deps, err := env.KernelDeps(family)
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", family, err))
		}
		if deps.IPTables == nil {
			continue
		}
		if err := env.CleanupLeftovers(ctx, deps); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", family, err))
		}
	}
	if err := deleteNFTablesModeTables(ctx, env.NFTables); err != nil {
		errs = append(errs, fmt.Errorf("cleanup nftables: %w", err))
	}
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	return fmt.Errorf("encountered an error while tearing down rules: %w%s", err, permissionHint(env, err))
}

// permissionHint explains a failure that is most likely a missing privilege.
func permissionHint(env *Environment, err error) string {
	switch {
	case env.Geteuid != nil && env.Geteuid() != 0:
		return " (not running as root: --cleanup needs root with CAP_NET_ADMIN; run it with sudo, or in a privileged container on the host network)"
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return " (operation not permitted: --cleanup needs CAP_NET_ADMIN in the host's network namespace; run it in a privileged container with hostNetwork)"
	}
	return ""
}

// cleanupOtherModes is what upstream's kube-proxy in ipvs mode removes at
// start: the nftables mode's tables (not the iptables mode's rules: upstream
// leaves those to --cleanup). Failures are logged and do not stop the start.
func cleanupOtherModes(ctx context.Context, env *Environment) {
	if err := deleteNFTablesModeTables(ctx, env.NFTables); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to clean up the nftables mode's leftovers")
	}
}

// deleteNFTablesModeTables deletes the kube-proxy table of the ip and ip6
// families; a missing table is fine.
func deleteNFTablesModeTables(ctx context.Context, nft nftables.Interface) error {
	if nft == nil {
		return nil
	}
	logger := klog.FromContext(ctx)
	var errs []error
	for _, family := range []nftables.Family{nftables.IPv4, nftables.IPv6} {
		err := nft.DeleteTable(family, nftablesModeTable)
		switch {
		case errors.Is(err, syscall.ENOENT):
		case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT):
			// No nf_tables in this kernel: nothing of that mode to clean
			// (upstream skips the step when nft cannot run).
			logger.V(2).Info("No nftables support; skipping the nftables mode's clean-up", "family", family.String(), "err", err)
			return nil
		case err != nil:
			errs = append(errs, err)
		default:
			logger.Info("Deleted the nftables mode's table", "family", family.String(), "table", nftablesModeTable)
		}
	}
	return errors.Join(errs...)
}
