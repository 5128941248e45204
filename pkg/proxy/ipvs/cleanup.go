package ipvs

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// CleanupLeftovers removes every IPVS service, the dummy device with its
// addresses, our iptables jumps and chains and our ipsets (kube-proxy
// --cleanup). deps.IPTables decides the family of rules and sets removed;
// run it once per family. It returns every failure, joined.
func CleanupLeftovers(ctx context.Context, deps Deps) error {
	logger := klog.FromContext(ctx)
	family := v1.IPv4Protocol
	if deps.IPTables.IsIPv6() {
		family = v1.IPv6Protocol
	}
	var errs []error
	if err := deps.IPVS.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("flush IPVS table: %w", err))
	}
	if err := ignoreMissing(deps.NetDev.DeleteDummy(DummyDevice)); err != nil {
		errs = append(errs, fmt.Errorf("delete dummy device %s: %w", DummyDevice, err))
	}
	for _, j := range jumpRules() {
		err := deps.IPTables.DeleteJump(j.table, j.from, j.to, "-m", "comment", "--comment", j.comment)
		if err = ignoreMissing(err); err != nil {
			errs = append(errs, fmt.Errorf("delete jump %s/%s -> %s: %w", j.table, j.from, j.to, err))
		}
	}
	if err := deps.IPTables.DeleteChains("nat", natChains); err != nil {
		errs = append(errs, fmt.Errorf("delete nat chains: %w", err))
	}
	if err := deps.IPTables.DeleteChains("filter", filterChains); err != nil {
		errs = append(errs, fmt.Errorf("delete filter chains: %w", err))
	}
	errs = append(errs, destroySets(deps, family))
	err := errors.Join(errs...)
	logger.Info("Cleaned up IPVS proxier leftovers", "ipFamily", family, "failed", err != nil)
	return err
}

// destroySets destroys our sets that exist (after the rules that match them).
func destroySets(deps Deps, family v1.IPFamily) error {
	existing, err := deps.IPSet.List()
	if err != nil {
		return fmt.Errorf("list ipsets: %w", err)
	}
	have := make(map[string]bool, len(existing))
	for _, s := range existing {
		have[s.Name] = true
	}
	var errs []error
	for _, def := range setDefinitions() {
		name := setName(def.name, family)
		if !have[name] {
			continue
		}
		if err := deps.IPSet.DestroySet(name); err != nil {
			errs = append(errs, fmt.Errorf("destroy ipset %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
