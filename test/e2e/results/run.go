package results

import (
	"slices"
	"time"
)

// Scenario names.
const (
	ScenarioServices = "services"
	ScenarioRolling  = "rolling"
	ScenarioInflight = "inflight"
	ScenarioLostNode = "lost-node"
	ScenarioUDP      = "udp"
	ScenarioRestart  = "restart"
	ScenarioChurn    = "churn"
	ScenarioOutage   = "apiserver-outage"
)

// Run is one scenario run: one proxier under one kernel profile.
type Run struct {
	Scenario string `json:"scenario"`
	// Proxy is "ours-gate-off", "ours-gate-on" or "upstream".
	Proxy string `json:"proxy"`
	// Profile is the kernel profile: "stock" or "legacy".
	Profile string `json:"profile"`
	// Module describes the loaded ip_vs module; Sysctls the node's IPVS sysctls once
	// the proxier had synced.
	Module  string `json:"module"`
	Sysctls string `json:"sysctls"`
	// Config is the KubeProxyConfiguration the proxier ran with.
	Config   string         `json:"config,omitempty"`
	Requests []Request      `json:"requests,omitempty"`
	Events   []Event        `json:"events,omitempty"`
	Streams  []StreamResult `json:"streams,omitempty"`
	Checks   []Check        `json:"checks"`
	// Notes are figures and observations printed with the run.
	Notes    []string      `json:"notes,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Check is one assertion of a run.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Informational checks are reported but do not fail the run (the expectations
	// of our proxier, applied to upstream kube-proxy for comparison).
	Informational bool `json:"informational,omitempty"`
}

// StreamResult is how one long-lived connection ended.
type StreamResult struct {
	// Case is "cut" (the pod's network deleted, then its process killed), "kill"
	// (the process killed with its network intact), "node-lost" (the pod's network
	// cut, its Node marked Unknown and its endpoint not ready) or "flap" (its endpoint
	// not ready on a Ready Node, the pod alive).
	Case string `json:"case"`
	Pod  string `json:"pod"`
	// Lost is true for streams to the pod that was taken away (or, in "flap", made
	// not ready).
	Lost bool `json:"lost"`
	// Kind is how the stream ended: a request kind, "hung" at its deadline, or "" when
	// it was still running when the scenario closed it.
	Kind string `json:"kind"`
	// After is the time from the pod's loss (the cut, or the kill; the flap) to the
	// error.
	After time.Duration `json:"after"`
	Err   string        `json:"err,omitempty"`
}

// Key names a run: scenario/profile/proxy.
func (r *Run) Key() string { return r.Scenario + "/" + r.Profile + "/" + r.Proxy }

// Passed reports whether every check passed.
func (r *Run) Passed() bool {
	for _, c := range r.Checks {
		if !c.OK && !c.Informational {
			return false
		}
	}
	return true
}

// MakeInformational turns every check but those named in keep into an informational one.
func (r *Run) MakeInformational(keep ...string) {
	for i := range r.Checks {
		if !slices.Contains(keep, r.Checks[i].Name) {
			r.Checks[i].Informational = true
		}
	}
}

// Check records an assertion.
func (r *Run) Check(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

// Note records a figure or an observation.
func (r *Run) Note(text string) { r.Notes = append(r.Notes, text) }
