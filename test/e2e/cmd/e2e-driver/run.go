package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/cluster"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/results"
	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/scenario"
)

// plan is the -run flags: scenario=proxy,proxy in order.
type plan []step

type step struct {
	scenario string
	proxies  []string
}

func (p *plan) String() string { return fmt.Sprint(*p) }

func (p *plan) Set(v string) error {
	name, proxies, ok := strings.Cut(v, "=")
	if !ok || proxies == "" {
		return fmt.Errorf("want scenario=proxy[,proxy...], got %q", v)
	}
	*p = append(*p, step{scenario: name, proxies: strings.Split(proxies, ",")})
	return nil
}

type options struct {
	profile, kubeconfig, ours, upstream, tuning, logDir, node string
	verbosity                                                 int
	plan                                                      plan
	churnSeed                                                 int64
	churnDuration                                             time.Duration
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.profile, "profile", "stock", "kernel profile the VM booted with: stock or legacy")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the API server as reached from the VM")
	fs.StringVar(&o.ours, "ours", "", "our kube-proxy binary")
	fs.StringVar(&o.upstream, "upstream", "", "upstream kube-proxy binary")
	fs.StringVar(&o.tuning, "tuning", "fast", "scenario sizes: fast (make test), demo or soak (make soak: a 30-minute churn)")
	fs.StringVar(&o.logDir, "log-dir", "/tmp/e2e-logs", "where the proxiers' logs go")
	fs.StringVar(&o.node, "node", "e2e-node", "Node name the proxier runs as")
	fs.IntVar(&o.verbosity, "proxier-v", 2, "the proxiers' --v")
	fs.Var(&o.plan, "run", "scenario=proxy[,proxy...] (repeatable): services, rolling, inflight, lost-node, udp, restart, churn, apiserver-outage")
	fs.Int64Var(&o.churnSeed, "churn-seed", 0, "seed of the churn scenario's choices (0: from the clock; printed)")
	fs.DurationVar(&o.churnDuration, "churn-duration", 0, "length of the churn scenario (0: the tuning's)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.kubeconfig == "" || len(o.plan) == 0 {
		return nil, fmt.Errorf("-kubeconfig and at least one -run are required")
	}
	return o, nil
}

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-driver:", err)
		return 2
	}
	ctx := context.Background()
	env, err := newEnv(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e-driver:", err)
		return 1
	}
	return runPlan(ctx, env, o.plan)
}

func newEnv(ctx context.Context, o *options) (*scenario.Env, error) {
	api, err := apiServerAddress(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := cluster.Connect(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	env := &scenario.Env{
		Cluster: c, APIServer: api, Profile: o.profile, Module: guest.ModuleProfile(), NodeName: o.node,
		OursBinary: o.ours, UpstreamBinary: o.upstream, LogDir: o.logDir, Verbosity: o.verbosity, Out: os.Stdout,
	}
	switch o.tuning {
	case "fast":
		env.Tune = scenario.FastTuning()
	case "demo":
		env.Tune = scenario.DemoTuning()
	case "soak":
		env.Tune = scenario.SoakTuning()
	default:
		return nil, fmt.Errorf("unknown -tuning %q", o.tuning)
	}
	env.Tune.ChurnSeed = o.churnSeed
	if o.churnDuration > 0 {
		env.Tune.ChurnDuration = o.churnDuration
	}
	if err := prepare(ctx, env, o.kubeconfig); err != nil {
		return nil, err
	}
	return env, nil
}

// prepare waits for the API server, clears the namespace, creates the Node and writes
// the proxiers' kubeconfig.
func prepare(ctx context.Context, env *scenario.Env, kubeconfig string) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := env.Cluster.Prepare(ctx)
		if err == nil {
			break
		}
		env.Printf("API server %s not usable yet (attempt %d, %s): %v", env.APIServer, attempt, time.Since(start).Round(time.Second), err)
		if time.Since(start) > 90*time.Second {
			return fmt.Errorf("API server %s: %w", env.APIServer, err)
		}
		time.Sleep(time.Second)
	}
	env.Printf("API server %s ready after %s", env.APIServer, time.Since(start).Round(time.Millisecond))
	if err := env.Cluster.EnsureNode(ctx, env.NodeName, guest.NodeIP(), guest.PodCIDR); err != nil {
		return err
	}
	return guest.WriteKubeconfig(kubeconfig)
}

// apiServerAddress is host:port of the kubeconfig's server.
func apiServerAddress(kubeconfig string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return "", fmt.Errorf("parse server %q of %s: %w", cfg.Host, kubeconfig, err)
	}
	return u.Host, nil
}

// runPlan runs every step, prints each run and its data lines, and returns the exit code.
func runPlan(ctx context.Context, env *scenario.Env, p plan) int {
	total := 0
	for _, s := range p {
		total += len(s.proxies)
	}
	n, failed := 0, 0
	for _, s := range p {
		for _, proxy := range s.proxies {
			n++
			env.Printf("run %d of %d: %s with %s", n, total, s.scenario, proxy)
			r := scenario.Run(ctx, env, s.scenario, proxy)
			fmt.Print(results.FormatRun(r))
			if err := printData(r, n); err != nil {
				fmt.Fprintln(os.Stderr, "e2e-driver:", err)
				failed++
			}
			if !r.Passed() {
				failed++
			}
		}
	}
	env.Printf("%d runs, %d failed", total, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func printData(r *results.Run, id int) error {
	lines, err := results.EncodeLines(r, id)
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}
