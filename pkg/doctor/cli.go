package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// Exit codes of ipvs-doctor.
const (
	ExitOK = 0
	// ExitProblems: a problem was found (with --fix: one remains).
	ExitProblems = 1
	// ExitCannotInspect: some part of the node or cluster could not be read;
	// the report shows what was found in the rest.
	ExitCannotInspect = 2
	ExitUsage         = 3
)

// apiTimeout bounds each request to the API server.
const apiTimeout = 30 * time.Second

// CommandOptions are ipvs-doctor's flags.
type CommandOptions struct {
	// Version: print the version and exit.
	Version      bool
	Kubeconfig   string
	InCluster    bool
	Output       string // "table" or "json"
	Fix          bool
	DummyDevice  string
	ExcludeCIDRs []netip.Prefix
	// ConfigzURL is the running kube-proxy's /configz ("" skips it).
	ConfigzURL string
}

// ParseFlags reads ipvs-doctor's command line.
func ParseFlags(args []string, stderr io.Writer) (CommandOptions, error) {
	var opts CommandOptions
	var exclude []string
	fs := pflag.NewFlagSet("ipvs-doctor", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: ipvs-doctor [flags]\n\nInspects this node's IPVS dataplane for stale real servers, "+
			"the source-port-reuse risk, leftovers and stale UDP conntrack entries.\nExit: 0 nothing wrong, 1 problems "+
			"found, 2 could not inspect everything, 3 bad usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.BoolVar(&opts.Version, "version", false, "print the version (ipvs-proxy's build and the Kubernetes release it is built on) and exit")
	fs.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig to read Services and EndpointSlices with")
	fs.BoolVar(&opts.InCluster, "in-cluster", false, "read Services and EndpointSlices with the Pod's service account")
	fs.StringVarP(&opts.Output, "output", "o", "table", "output format: table or json")
	fs.BoolVar(&opts.Fix, "fix", false, "delete the stale real servers and conntrack entries found, and say what was deleted")
	fs.StringVar(&opts.DummyDevice, "dummy-device", DefaultDummyDevice, "device holding the Service addresses")
	fs.StringSliceVar(&exclude, "exclude-cidrs", nil, "address ranges whose virtual servers and addresses are not the proxier's")
	fs.StringVar(&opts.ConfigzURL, "configz-url", DefaultConfigzURL, "the running kube-proxy's /configz (its metricsBindAddress), read to report whether "+gateName+" is on; empty to skip")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if opts.Output != "table" && opts.Output != "json" {
		return opts, fmt.Errorf("--output %q: want table or json", opts.Output)
	}
	if opts.InCluster && opts.Kubeconfig != "" {
		return opts, errors.New("--in-cluster and --kubeconfig exclude each other")
	}
	for _, s := range exclude {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return opts, fmt.Errorf("--exclude-cidrs: %w", err)
		}
		opts.ExcludeCIDRs = append(opts.ExcludeCIDRs, p.Masked())
	}
	return opts, nil
}

// Main is the ipvs-doctor command; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return mainWith(args, stdout, stderr, NodeSources)
}

// mainWith is Main with the node's sources replaceable (tests).
func mainWith(args []string, stdout, stderr io.Writer, nodeSources func(dummyDevice string) (Sources, error)) int {
	opts, err := ParseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return ExitOK
	}
	if err == nil && opts.Version {
		fmt.Fprintf(stdout, "ipvs-doctor %s\n", version.Get())
		return ExitOK
	}
	if err != nil {
		return failEarly(opts, stdout, stderr, err, ExitUsage)
	}
	src, err := nodeSources(opts.DummyDevice)
	if err != nil {
		return cannotInspect(opts, stdout, stderr, fmt.Errorf("cannot inspect IPVS on this node: %w", err))
	}
	if src.Client, err = newClient(opts); err != nil {
		return cannotInspect(opts, stdout, stderr, err)
	}
	if opts.ConfigzURL != "" {
		src.ReadConfigz, src.ConfigzURL = readConfigz(opts.ConfigzURL), opts.ConfigzURL
	}
	return Run(context.Background(), opts, src, stdout, stderr)
}

// cannotInspect reports a failure to start inspecting (see failEarly).
func cannotInspect(opts CommandOptions, stdout, stderr io.Writer, err error) int {
	return failEarly(opts, stdout, stderr, err, ExitCannotInspect)
}

// failEarly reports a failure before any inspection (bad usage, no IPVS,
// no cluster access): on stderr, and under -o json also as a JSON object
// on stdout, so that a caller parsing stdout gets a document either way.
func failEarly(opts CommandOptions, stdout, stderr io.Writer, err error, code int) int {
	fmt.Fprintf(stderr, "ipvs-doctor: %v\n", err)
	if opts.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exitCode"`
		}{err.Error(), code})
	}
	return code
}

// newClient returns nil when no cluster access was asked for.
func newClient(opts CommandOptions) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case opts.InCluster:
		cfg, err = rest.InClusterConfig()
	case opts.Kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("API server configuration: %w", err)
	}
	cfg.Timeout = apiTimeout
	cfg.UserAgent = "ipvs-doctor"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	return client, nil
}

// Run collects, diagnoses, fixes when asked, writes the report and
// returns the exit code.
func Run(ctx context.Context, opts CommandOptions, src Sources, stdout, stderr io.Writer) int {
	report := Diagnose(Collect(ctx, src), Options{ExcludeCIDRs: opts.ExcludeCIDRs})
	if opts.Fix {
		Fix(&report, src.IPVS, src.Conntrack)
	}
	write := WriteText
	if opts.Output == "json" {
		write = WriteJSON
	}
	if err := write(stdout, &report); err != nil {
		fmt.Fprintf(stderr, "ipvs-doctor: write report: %v\n", err)
		return ExitCannotInspect
	}
	return exitCode(&report, opts.Fix)
}

func exitCode(r *Report, fixed bool) int {
	problems := r.Count(SeverityProblem)
	if fixed {
		problems = r.Unfixed()
	}
	switch {
	case len(r.Gaps) > 0:
		return ExitCannotInspect
	case problems > 0:
		return ExitProblems
	}
	return ExitOK
}
