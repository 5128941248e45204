package doctor

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// Kernel versions as major*100+minor.
const (
	// kernelRescheduleFixed: from Linux 5.9, a new connection that reuses
	// the tuple of an entry whose real server is at weight 0 is scheduled
	// afresh when expire_nodest_conn=1, whatever conn_reuse_mode says.
	kernelRescheduleFixed = 509
	kernelUnknown         = 0
)

var kernelReleaseRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// kernelVersion turns "6.1.0-56-amd64" into 601 (kernelUnknown when it
// does not start with major.minor).
func kernelVersion(release string) int {
	m := kernelReleaseRE.FindStringSubmatch(release)
	if m == nil {
		return kernelUnknown
	}
	major, errMajor := strconv.Atoi(m[1])
	minor, errMinor := strconv.Atoi(m[2])
	if errMajor != nil || errMinor != nil || major > 1000 {
		return kernelUnknown
	}
	return major*100 + min(minor, 99)
}

// riskInput is what the source-port-reuse risk depends on.
type riskInput struct {
	kernelRelease string
	sysctls       map[string]int
	// weightZero counts real servers at weight 0 now: evidence that the
	// graceful (weight 0) termination policy is in use.
	weightZero int
	// gracefulServices counts Services annotated with the graceful policy.
	gracefulServices int
	// persistentServers counts virtual servers with session affinity.
	persistentServers int
}

// Plain-word fixes shared by several rules.
const (
	fixImmediate = "Delete real servers at once instead of keeping them at weight 0: enable ipvs-proxy's " +
		"IPVSImmediateTermination feature gate (or annotate the Services " +
		"ipvs-proxy.kubernetes.io/termination-policy=immediate) and keep net.ipv4.vs.expire_nodest_conn=1; " +
		"or upgrade to Linux 5.9 or newer. `ipvs-doctor --fix` deletes the stale weight-0 real servers found now."
	fixExpireNodest = "Run `sysctl -w net.ipv4.vs.expire_nodest_conn=1`. ipvs-proxy sets it when it starts and " +
		"restores it on every full sync: if it is 0, the proxier is not running or something else resets it."
)

// assessRisk grades the risk that new connections reusing a source port
// reach a pod that is terminating or gone, applying every rule and keeping
// the worst level.
func assessRisk(in riskInput) Risk {
	var reasons []RiskReason
	for _, rule := range []func(riskInput) []RiskReason{expireNodestRule, connReuseRule, quiescentTemplateRule} {
		reasons = append(reasons, rule(in)...)
	}
	if len(reasons) == 0 { // every rule applies to some input; this is a safety net
		reasons = []RiskReason{{Level: RiskUnknown, Reason: "No rule applied to these settings."}}
	}
	slices.SortStableFunc(reasons, func(a, b RiskReason) int { return a.Level.rank() - b.Level.rank() })
	return Risk{Level: reasons[0].Level, Reasons: reasons}
}

func expireNodestRule(in riskInput) []RiskReason {
	v, ok := in.sysctls[SysctlExpireNodestConn]
	switch {
	case !ok:
		return []RiskReason{{Level: RiskUnknown,
			Reason: "net.ipv4.vs.expire_nodest_conn could not be read (is the ip_vs module loaded?).",
			Fix:    "Run ipvs-doctor as root in the node's network namespace, with ip_vs loaded."}}
	case v == 0:
		return []RiskReason{{Level: RiskHigh,
			Reason: "expire_nodest_conn=0: when a real server is deleted, the connection entries pointing to it " +
				"stay until they time out (15 min for established TCP, 5 min for UDP). Packets of those " +
				"connections, and new connections that reuse their source port, are dropped meanwhile.",
			Fix: fixExpireNodest}}
	}
	return nil
}

// connReuseRule covers the failure itself: before Linux 5.9 with
// conn_reuse_mode=0, a SYN that reuses a tuple follows the old entry to
// its old real server, weight 0 or not.
func connReuseRule(in riskInput) []RiskReason {
	kv := kernelVersion(in.kernelRelease)
	reuse, reuseKnown := in.sysctls[SysctlConnReuseMode]
	nodest, nodestKnown := in.sysctls[SysctlExpireNodestConn]
	switch {
	case kv == kernelUnknown:
		return []RiskReason{{Level: RiskUnknown,
			Reason: fmt.Sprintf("Kernel release %q is not a version ipvs-doctor can read; the risk depends on "+
				"whether it is older than Linux 5.9.", in.kernelRelease)}}
	case kv >= kernelRescheduleFixed && nodestKnown && nodest != 0:
		return []RiskReason{{Level: RiskLow, Reason: newKernelReason(in)}}
	case kv >= kernelRescheduleFixed:
		return nil // expireNodestRule covers expire_nodest_conn
	case !reuseKnown:
		return []RiskReason{{Level: RiskUnknown, Reason: "net.ipv4.vs.conn_reuse_mode could not be read."}}
	case reuse != 0:
		return []RiskReason{{Level: RiskLow, Reason: fmt.Sprintf("Linux %s is older than 5.9 but conn_reuse_mode=%d: "+
			"a new connection that reuses a source port is scheduled afresh (kube-proxy sets conn_reuse_mode=0 "+
			"on such kernels because this can delay those connections).", versionText(kv), reuse)}}
	}
	return []RiskReason{oldKernelReason(in, kv)}
}

func oldKernelReason(in riskInput, kv int) RiskReason {
	what := fmt.Sprintf("Linux %s is older than 5.9 and conn_reuse_mode=0: a new connection that reuses a client's "+
		"source port (TIME_WAIT reuse behind nginx or another busy client) follows the old connection entry to "+
		"its old real server without looking at weights.", versionText(kv))
	harm := " Such connections reach terminating or deleted pods: 502s and \"no route to host\" for minutes after " +
		"rollouts (kubernetes #81775)."
	switch {
	case in.weightZero > 0:
		return RiskReason{Level: RiskHigh, Fix: fixImmediate, Reason: what + fmt.Sprintf(
			" This node keeps real servers at weight 0 while their pods terminate (%d now).", in.weightZero) + harm}
	case in.gracefulServices > 0:
		return RiskReason{Level: RiskHigh, Fix: fixImmediate, Reason: what + fmt.Sprintf(
			" %d Services ask for the graceful (weight 0) termination policy.", in.gracefulServices) + harm}
	}
	return RiskReason{Level: RiskMedium, Fix: fixImmediate, Reason: what +
		" No real server is at weight 0 now; if the proxier uses the graceful (weight 0) termination policy " +
		"(upstream kube-proxy's behaviour), the risk is high." + harm}
}

func newKernelReason(in riskInput) string {
	s := "This kernel (5.9 or newer) with expire_nodest_conn=1 schedules a new connection afresh when the " +
		"connection entry it reuses points to a real server at weight 0, whatever conn_reuse_mode says: new " +
		"connections do not reach terminating pods."
	if in.weightZero > 0 {
		s += fmt.Sprintf(" %d real servers are at weight 0: established connections to a pod that is already "+
			"gone still hang until their entry times out; the immediate termination policy resets them at once.",
			in.weightZero)
	}
	return s
}

// quiescentTemplateRule: with session affinity, a persistence template
// keeps sending a client to its real server even at weight 0 unless
// expire_quiescent_template=1.
func quiescentTemplateRule(in riskInput) []RiskReason {
	v, ok := in.sysctls[SysctlExpireQuiescent]
	if !ok || v != 0 || in.persistentServers == 0 {
		return nil
	}
	level := RiskMedium
	if in.weightZero > 0 {
		level = RiskHigh
	}
	return []RiskReason{{Level: level,
		Reason: fmt.Sprintf("expire_quiescent_template=0 with %d virtual servers using session affinity: a client's "+
			"persistence template keeps sending its new connections to the same real server even at weight 0.",
			in.persistentServers),
		Fix: "Run `sysctl -w net.ipv4.vs.expire_quiescent_template=1` (ipvs-proxy sets it when it starts)."}}
}

func versionText(kv int) string { return fmt.Sprintf("%d.%d", kv/100, kv%100) }
