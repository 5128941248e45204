package doctor

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
)

func TestKernelVersion(t *testing.T) {
	for release, want := range map[string]int{
		"6.1.0-56-amd64": 601, "5.9.0": 509, "4.19.0-25-amd64": 419, "5.10": 510, "3.10.0-1160.el7.x86_64": 310,
		"5.123.1": 599, "": kernelUnknown, "linux": kernelUnknown, "v6.1": kernelUnknown, "99999999999999999999.1": kernelUnknown,
	} {
		if got := kernelVersion(release); got != want {
			t.Errorf("kernelVersion(%q) = %d, want %d", release, got, want)
		}
	}
}

func withSysctl(name string, value int) map[string]int {
	s := healthySysctls()
	s[name] = value
	return s
}

func withoutSysctl(name string) map[string]int {
	s := healthySysctls()
	delete(s, name)
	return s
}

func TestAssessRisk(t *testing.T) {
	old := "4.19.0-25-amd64"
	tests := []struct {
		name string
		in   riskInput
		want RiskLevel
		// words must appear in some reason, fix the fix of the worst one.
		words, fix string
	}{
		{"new kernel, proxier's sysctls", riskInput{kernelRelease: "6.1.0", sysctls: healthySysctls()},
			RiskLow, "5.9 or newer", ""},
		{"new kernel with weight-0 real servers", riskInput{kernelRelease: "6.1.0", sysctls: healthySysctls(), weightZero: 2},
			RiskLow, "2 real servers are at weight 0", ""},
		{"expire_nodest_conn=0", riskInput{kernelRelease: "6.1.0", sysctls: withSysctl(SysctlExpireNodestConn, 0)},
			RiskHigh, "expire_nodest_conn=0", "expire_nodest_conn=1"},
		{"old kernel, conn_reuse_mode=0, weight 0 in use",
			riskInput{kernelRelease: old, sysctls: withSysctl(SysctlConnReuseMode, 0), weightZero: 3},
			RiskHigh, "Linux 4.19 is older than 5.9 and conn_reuse_mode=0", "IPVSImmediateTermination"},
		{"old kernel, conn_reuse_mode=0, graceful Services",
			riskInput{kernelRelease: old, sysctls: withSysctl(SysctlConnReuseMode, 0), gracefulServices: 1},
			RiskHigh, "1 Services ask for the graceful", "IPVSImmediateTermination"},
		{"old kernel, conn_reuse_mode=0, no weight 0 seen",
			riskInput{kernelRelease: old, sysctls: withSysctl(SysctlConnReuseMode, 0)},
			RiskMedium, "if the proxier uses the graceful", "IPVSImmediateTermination"},
		{"old kernel, conn_reuse_mode=1", riskInput{kernelRelease: old, sysctls: healthySysctls(), weightZero: 1},
			RiskLow, "conn_reuse_mode=1", ""},
		{"old kernel, conn_reuse_mode unreadable", riskInput{kernelRelease: old, sysctls: withoutSysctl(SysctlConnReuseMode)},
			RiskUnknown, "conn_reuse_mode could not be read", ""},
		{"unknown kernel", riskInput{kernelRelease: "", sysctls: healthySysctls()}, RiskUnknown, "not a version", ""},
		{"no IPVS sysctls", riskInput{kernelRelease: "6.1.0", sysctls: map[string]int{}}, RiskUnknown, "ip_vs module loaded", ""},
		{"old kernel, both faults", riskInput{kernelRelease: old,
			sysctls: map[string]int{SysctlConnReuseMode: 0, SysctlExpireNodestConn: 0}, weightZero: 1},
			RiskHigh, "expire_nodest_conn=0", "expire_nodest_conn=1"},
		{"session affinity without expire_quiescent_template",
			riskInput{kernelRelease: "6.1.0", sysctls: withSysctl(SysctlExpireQuiescent, 0), persistentServers: 2},
			RiskMedium, "persistence template", "expire_quiescent_template=1"},
		{"session affinity without expire_quiescent_template, weight 0 in use",
			riskInput{kernelRelease: "6.1.0", sysctls: withSysctl(SysctlExpireQuiescent, 0), persistentServers: 2, weightZero: 1},
			RiskHigh, "persistence template", "expire_quiescent_template=1"},
		{"expire_quiescent_template=0 without session affinity",
			riskInput{kernelRelease: "6.1.0", sysctls: withSysctl(SysctlExpireQuiescent, 0)}, RiskLow, "5.9 or newer", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			risk := assessRisk(tc.in)
			if risk.Level != tc.want {
				t.Errorf("level = %s, want %s (%+v)", risk.Level, tc.want, risk.Reasons)
			}
			if risk.Reasons[0].Level != risk.Level {
				t.Errorf("worst reason first: %+v", risk.Reasons)
			}
			if !strings.Contains(allReasons(risk), tc.words) {
				t.Errorf("reasons lack %q: %s", tc.words, allReasons(risk))
			}
			if !strings.Contains(risk.Reasons[0].Fix, tc.fix) {
				t.Errorf("fix %q lacks %q", risk.Reasons[0].Fix, tc.fix)
			}
		})
	}
}

func allReasons(r Risk) string {
	var s []string
	for _, reason := range r.Reasons {
		s = append(s, reason.Reason)
	}
	return strings.Join(s, "\n")
}

// TestDiagnoseRiskEvidence checks what Diagnose counts as evidence of the
// weight-0 policy and of session affinity.
func TestDiagnoseRiskEvidence(t *testing.T) {
	persistent := vserver("TCP 10.96.0.1:80", dest("10.244.1.5:8080", 0, 0, 0))
	persistent.Flags |= ipvs.FlagPersistent
	snap := node([]ipvs.VirtualServer{persistent, vserver("TCP 172.16.0.1:80", dest("10.0.0.1:80", 0, 0, 0))},
		addrs("10.96.0.1"), cluster([]v1.Service{service("web", "10.96.0.1", func(s *v1.Service) {
			s.Annotations = map[string]string{annotationTerminationPolicy: policyGraceful}
		})}))
	d := &diagnosis{snap: &snap, opts: Options{ExcludeCIDRs: mustPrefixes("172.16.0.0/12")}, idx: newClusterIndex(snap.Cluster)}
	got := d.riskInput()
	want := riskInput{kernelRelease: "6.1.0-56-amd64", sysctls: snap.Sysctls, weightZero: 1, gracefulServices: 1, persistentServers: 1}
	if got.weightZero != want.weightZero || got.gracefulServices != want.gracefulServices ||
		got.persistentServers != want.persistentServers || got.kernelRelease != want.kernelRelease {
		t.Errorf("riskInput = %+v, want %+v", got, want)
	}
	snap.KernelRelease, snap.Sysctls = "4.19.0", withSysctl(SysctlConnReuseMode, 0)
	if r := Diagnose(snap, Options{}); r.Risk.Level != RiskHigh || r.Count(SeverityProblem) == 0 {
		t.Errorf("old kernel with weight 0: risk %s, %d problems", r.Risk.Level, r.Count(SeverityProblem))
	}
}
