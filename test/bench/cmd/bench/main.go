// Command bench runs the proxier benchmarks side by side with upstream's
// IPVS proxier and writes their tables and plot.
//
//	bench fakes  [-sizes 1000,10000,30000] [-out _output/bench/fakes.json] ...
//	bench kernel-load -kubeconfig K -services N
//	bench kernel-collect -in VM-OUTPUT -out _output/bench/kernel.json
//	bench flush-collect -in VM-OUTPUT -out _output/bench/flush.json
//	bench relay HOST:PORT   (qemu guestfwd cmd: stdin/stdout <-> TCP)
//	bench report [-dir _output/bench]
//
// "fakes" runs every side at every size in a child process of its own, in
// a network namespace of its own (upstream's proxier binds addresses on
// the namespace's kube-ipvs0), and prints the table. "kernel-load" fills
// the API server for the VM runs (hack/bench-kernel.sh; bench-guest
// measures in the VM) and "kernel-collect" gathers their result lines.
// "report" writes bench.md and sync-time.svg from fakes.json and kernel.json.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/klog/v2"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench fakes|kernel-load|kernel-collect|flush-collect|report [flags]")
		os.Exit(2)
	}
	quietKlog()
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "fakes":
		err = runFakes(ctx, os.Args[2:])
	case childCommand:
		err = runFakesChild(ctx, os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	case "kernel-load":
		err = runKernelLoad(ctx, os.Args[2:])
	case "kernel-collect":
		err = runKernelCollect(os.Args[2:])
	case "flush-collect":
		err = runFlushCollect(os.Args[2:])
	case "relay":
		err = runRelay(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// quietKlog drops the proxiers' logs (upstream logs through klog's global
// logger); they would dominate the timings at verbosity 0 already.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		_ = fs.Set(name, value) // known flags: cannot fail
	}
	klog.SetOutput(io.Discard)
}
