// Package app is the kube-proxy command: upstream's flags and
// KubeProxyConfiguration, served by the ipvs-proxy IPVS proxier.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/featuregate"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	metricsfeatures "k8s.io/component-base/metrics/features"
	k8sversion "k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// compatibleVersion is the upstream release whose flags and configuration
// this binary accepts.
const compatibleVersion = "v1.37.2"

// Main runs kube-proxy with args and returns the exit code. SIGTERM and
// SIGINT stop it cleanly (exit 0) without touching the dataplane.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	defer logs.FlushLogs()
	cmd, err := NewCommand(ctx, DefaultEnvironment(), utilfeature.DefaultMutableFeatureGate)
	if err == nil {
		cmd.SetArgs(args)
		cmd.SetOut(stdout)
		cmd.SetErr(stderr)
		err = cmd.Execute()
	}
	if err != nil {
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintf(stderr, "kube-proxy: %s\n", errorLine(err))
		}
		return 1
	}
	return 0
}

// loggedError is a fatal error already written to the log (in the log's
// format, JSON under --logging-format=json), so Main does not print it again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// errorLine writes err on one line.
func errorLine(err error) string {
	return oneLine(strings.ReplaceAll(err.Error(), "\n", "; "))
}

// NewCommand builds the kube-proxy command. gate receives our feature gates
// and the configuration's settings (upstream's code reads the process-wide
// default gate, so the binary passes that one).
func NewCommand(ctx context.Context, env *Environment, gate featuregate.MutableVersionedFeatureGate) (*cobra.Command, error) {
	if err := addFeatureGates(gate); err != nil {
		return nil, err
	}
	opts := newOptions()
	cmd := &cobra.Command{
		Use:           "kube-proxy",
		Short:         "kube-proxy for IPVS mode (ipvs-proxy)",
		Long:          "The Kubernetes network proxy in IPVS mode: a drop-in kube-proxy (" + compatibleVersion + " flags and KubeProxyConfiguration) that programs Services into IPVS.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			for _, arg := range args {
				if arg != "" {
					return fmt.Errorf("%q does not take any arguments, got %q", cmd.CommandPath(), args)
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.version != versionOff {
				printVersion(cmd.OutOrStdout(), opts.version)
				return nil
			}
			return opts.run(ctx, cmd, env, gate)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w (see --help)", err)
	})
	cmd.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	opts.addFlags(cmd.Flags(), gate)
	return cmd, nil
}

// run resolves the configuration and does what the flags ask: write the
// configuration, clean up, initialise, or serve. A fatal error under a
// logging format other than text is logged in that format.
func (o *Options) run(ctx context.Context, cmd *cobra.Command, env *Environment, gate featuregate.MutableVersionedFeatureGate) error {
	loggingApplied := false
	err := o.resolveAndRun(ctx, cmd, env, gate, &loggingApplied)
	if err == nil || o.config.Logging.Format == "" || o.config.Logging.Format == logsapi.DefaultLogFormat || env.ApplyLogging == nil {
		return err
	}
	// Resolving failed before logging was set up: set it up from the flags
	// (and the file, when it was read) to report the error in that format.
	if !loggingApplied && env.ApplyLogging(&o.config.Logging, gate) != nil {
		return err
	}
	klog.Background().Error(err, "kube-proxy failed")
	logs.FlushLogs()
	return loggedError{err}
}

func (o *Options) resolveAndRun(ctx context.Context, cmd *cobra.Command, env *Environment, gate featuregate.MutableVersionedFeatureGate, loggingApplied *bool) error {
	logger := klog.FromContext(ctx)
	if err := o.complete(logger, cmd.Flags(), gate); err != nil {
		return err
	}
	metricsfeatures.ApplyFeatureGates(gate)
	if err := env.ApplyLogging(&o.config.Logging, gate); err != nil {
		return err
	}
	*loggingApplied = true
	cliflag.PrintFlags(cmd.Flags())
	for _, warning := range o.warnings {
		logger.Info("Warning: " + warning)
	}
	switch {
	case o.WriteConfigTo != "":
		return writeConfigFile(o.WriteConfigTo, o.config)
	case o.Cleanup:
		return cleanupLeftovers(ctx, env)
	}
	cleanupOtherModes(ctx, env)
	if o.InitOnly {
		return env.SetConntrackSysctls(ctx, &o.config.Conntrack)
	}
	var configChanged <-chan error
	if o.ConfigFile != "" {
		var err error
		if configChanged, err = watchConfigFile(ctx, o.ConfigFile); err != nil {
			return err
		}
	}
	return runServer(ctx, o.config, o.warnings, o.master, env, gate, configChanged)
}

// printVersion prints, like upstream's --version, "Kubernetes vX.Y.Z" (the
// Kubernetes release the binary is built on) and then ipvs-proxy's own version.
// --version=raw prints upstream's line (k8s.io/component-base/version, stamped
// by hack/lib.sh) and then ipvs-proxy's.
func printVersion(w io.Writer, mode versionValue) {
	ours := version.Get()
	if mode == versionRaw {
		fmt.Fprintf(w, "%#v\nipvs-proxy %#v\n", k8sversion.Get(), ours)
		return
	}
	fmt.Fprintf(w, "Kubernetes %s (ipvs-proxy %s, commit %s, %s, built %s)\n",
		ours.KubernetesVersion, ours.Version, ours.GitCommit, ours.GitTreeState, ours.BuildDate)
}
