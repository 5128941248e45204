package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
)

// Run runs one scenario with one proxier.
func Run(ctx context.Context, env *Env, name, proxy string) *results.Run {
	switch name {
	case results.ScenarioRolling:
		return Rolling(ctx, env, proxy)
	case results.ScenarioServices:
		return Services(ctx, env, proxy)
	case results.ScenarioInflight:
		return Inflight(ctx, env, proxy)
	case results.ScenarioLostNode:
		return LostNode(ctx, env, proxy)
	case results.ScenarioUDP:
		return UDP(ctx, env, proxy)
	case results.ScenarioRestart:
		return Restart(ctx, env, proxy)
	case results.ScenarioChurn:
		return Churn(ctx, env, proxy)
	case results.ScenarioOutage:
		return Outage(ctx, env, proxy)
	}
	r := &results.Run{Scenario: name, Proxy: proxy, Profile: env.Profile, Module: env.Module}
	r.Check("known scenario", false, fmt.Sprintf("no scenario %q", name))
	return r
}

// runScenario builds the world for one proxier, runs body and records its error.
func runScenario(ctx context.Context, env *Env, scenario, proxy string, syncPeriod time.Duration, body func(*world, context.Context) error) *results.Run {
	run := &results.Run{Scenario: scenario, Proxy: proxy, Profile: env.Profile, Module: env.Module}
	start := time.Now()
	defer func() { run.Duration = time.Since(start) }()
	env.Printf("%s %s: starting (node, pods, proxier)", scenario, proxy)
	spec, err := env.Spec(proxy, syncPeriod)
	if err != nil {
		run.Check(checkSetup, false, err.Error())
		return run
	}
	w, err := newWorld(ctx, env, run, spec)
	if err != nil {
		run.Check(checkSetup, false, err.Error())
		return run
	}
	defer w.close(ctx)
	env.Printf("%s %s: proxier synced; sysctls %s", scenario, proxy, run.Sysctls)
	if err := body(w, ctx); err != nil {
		run.Check(checkRan, false, err.Error())
	}
	if proxy == Upstream {
		// Our expectations are figures for upstream, not its failures.
		run.MakeInformational(checkSetup, checkRan, checkTeardown)
	}
	return run
}

// Checks every scenario makes about itself, whatever the proxier.
const (
	checkSetup    = "setup"
	checkRan      = "scenario ran to the end"
	checkTeardown = "clean teardown"
)
