package doctor

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

// FixResult says what Fix did about one finding.
type FixResult struct {
	Object string `json:"object"`
	// Done lists what was deleted, in words.
	Done []string `json:"done"`
	// Error is why the repair failed ("" when it worked).
	Error string `json:"error,omitempty"`
}

// Fix carries out the repairs of the report's findings: it deletes each
// stale real server (one already gone counts as deleted), then its
// conntrack entries, and records the results in report.Fixed.
func Fix(report *Report, table ipvs.Interface, ct conntrack.Interface) {
	for _, f := range report.Findings {
		if f.Repair == nil {
			continue
		}
		res := FixResult{Object: f.Object}
		if err := repair(*f.Repair, table, ct, &res); err != nil {
			res.Error = err.Error()
		}
		report.Fixed = append(report.Fixed, res)
	}
}

func repair(r Repair, table ipvs.Interface, ct conntrack.Interface, res *FixResult) error {
	if rs := r.DeleteRealServer; rs != nil {
		err := table.DeleteDestination(rs.Service, rs.Destination)
		switch {
		case errors.Is(err, syscall.ENOENT):
			res.Done = append(res.Done, "real server already gone")
		case err != nil:
			// Keep the conntrack entries: flushing them while the real
			// server stays only makes new ones.
			return err
		default:
			res.Done = append(res.Done, "deleted real server "+realServerName(rs.Service, rs.Destination))
		}
	}
	if len(r.DeleteConntrack) == 0 {
		return nil
	}
	n, err := ct.Delete(r.DeleteConntrack)
	if err != nil {
		return fmt.Errorf("delete conntrack entries (%d deleted): %w", n, err)
	}
	res.Done = append(res.Done, fmt.Sprintf("deleted %d conntrack entries", n))
	return nil
}

// Unfixed counts the problems that remain after Fix: those without a
// repair and those whose repair failed (the risk assessment counts too).
func (r *Report) Unfixed() int {
	failed := map[string]bool{}
	for _, res := range r.Fixed {
		if res.Error != "" {
			failed[res.Object] = true
		}
	}
	n := 0
	if r.Risk.Level.severity() == SeverityProblem {
		n++
	}
	for _, f := range r.Findings {
		if f.Severity == SeverityProblem && (f.Repair == nil || failed[f.Object]) {
			n++
		}
	}
	return n
}
