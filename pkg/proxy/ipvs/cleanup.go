package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// errNoIPVS is the flush step's error when deps.IPVS is nil (the IPVS
// netlink socket could not be opened: no ip_vs module).
var errNoIPVS = errors.New("IPVS is not available")

// CleanupLeftovers is kube-proxy --cleanup for one family: it flushes the
// IPVS table, deletes the dummy device, removes the iptables rules and
// chains of both upstream proxiers that use iptables (ipvs and iptables
// mode, as upstream's --cleanup does in every mode) and destroys our
// ipsets. deps.IPTables decides the family; deps.IPVS may be nil (that
// step then fails and the others still run). Every step is attempted and
// logged; it returns every failure, joined.
func CleanupLeftovers(ctx context.Context, deps Deps) error {
	logger := klog.FromContext(ctx)
	family := v1.IPv4Protocol
	if deps.IPTables.IsIPv6() {
		family = v1.IPv6Protocol
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"flush IPVS table", func() error {
			if deps.IPVS == nil {
				return errNoIPVS
			}
			return deps.IPVS.Flush()
		}},
		{"delete dummy device " + DummyDevice, func() error { return ignoreMissing(deps.NetDev.DeleteDummy(DummyDevice)) }},
		{"delete iptables jumps", func() error { return deleteAllJumps(deps.IPTables) }},
		{"delete nat chains", func() error { return deleteModeChains(deps.IPTables, iptables.TableNAT) }},
		{"delete filter chains", func() error { return deleteModeChains(deps.IPTables, iptables.TableFilter) }},
		{"destroy ipsets", func() error { return destroySets(deps, family) }},
	}
	var errs []error
	for _, step := range steps {
		if err := step.run(); err != nil {
			logger.Error(err, "Cleanup step failed", "step", step.name, "ipFamily", family)
			errs = append(errs, fmt.Errorf("%s: %w", step.name, err))
			continue
		}
		logger.Info("Cleanup step done", "step", step.name, "ipFamily", family)
	}
	return errors.Join(errs...)
}

// deleteAllJumps removes our jumps and those of upstream's iptables mode
// from the built-in chains (absent ones are fine).
func deleteAllJumps(ipt iptables.Interface) error {
	var errs []error
	for _, j := range jumpRules() {
		err := ipt.DeleteJump(j.table, j.from, j.to, "-m", "comment", "--comment", j.comment)
		if err = ignoreMissing(err); err != nil {
			errs = append(errs, err)
		}
	}
	for _, j := range iptablesModeJumps {
		args := append(slices.Clone(j.match), "-m", "comment", "--comment", j.comment)
		if err := ignoreMissing(ipt.DeleteJump(j.table, j.from, j.to, args...)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteModeChains flushes and deletes, in one restore (so that chains
// referring to each other go together), our chains of table, upstream's
// iptables-mode chains and its per-Service chains found in the table.
func deleteModeChains(ipt iptables.Interface, table string) error {
	chains := slices.Clone(natChains)
	modeChains := iptablesModeNATChains
	if table == iptables.TableFilter {
		chains, modeChains = slices.Clone(filterChains), iptablesModeFilterChains
	}
	for _, c := range modeChains {
		if !slices.Contains(chains, c) {
			chains = append(chains, c)
		}
	}
	if table == iptables.TableNAT {
		saved, err := ipt.Save(table)
		if err != nil {
			return err
		}
		chains = append(chains, serviceChainsIn(saved)...)
	}
	return ipt.DeleteChains(table, chains)
}

// serviceChainsIn lists the per-Service chains of upstream's iptables mode
// that an iptables-save of the nat table declares.
func serviceChainsIn(saved []byte) []string {
	var found []string
	for _, line := range strings.Split(string(saved), "\n") {
		name, ok := strings.CutPrefix(line, ":")
		if !ok || len(strings.Fields(name)) == 0 {
			continue
		}
		name = strings.Fields(name)[0]
		for _, prefix := range iptablesModeServiceChainPrefixes {
			if strings.HasPrefix(name, prefix) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// destroySets destroys our sets that exist (after the rules that match them).
func destroySets(deps Deps, family v1.IPFamily) error {
	existing, err := deps.IPSet.List(func(name string) bool {
		_, ours := ownSetName(name, family)
		return ours
	})
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
