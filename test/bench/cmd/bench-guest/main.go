// Command bench-guest runs in the test VM: it starts one kube-proxy (ours,
// or upstream's in IPVS or nftables mode) against the API server the host loaded, measures it on
// the real kernel (test/bench/kernel) and prints the result as one line
// "BENCH-KERNEL-RESULT <json>" for hack/bench-kernel.sh.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/test/bench/kernel"
	"github.com/ipvs-proxy/ipvs-proxy/test/bench/results"
)

// ProfilePrefix starts the line that carries the idle window's CPU profile
// (-profile), StartProfilePrefix the start-up's (-profile-start); the
// result's line starts with results.KernelResultPrefix.
const (
	ProfilePrefix      = "BENCH-CPU-PROFILE "
	StartProfilePrefix = "BENCH-CPU-PROFILE-START "
)

func main() {
	var o kernel.Options
	flag.StringVar(&o.Side, "side", results.Ours, "ours, upstream or upstream-nftables (labels the result; upstream-nftables runs the binary in nftables mode and reads its nftables table instead of IPVS)")
	flag.StringVar(&o.Binary, "binary", "", "kube-proxy binary")
	flag.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig of the API server")
	flag.IntVar(&o.Services, "services", 1000, "services the host loaded")
	flag.DurationVar(&o.SyncPeriod, "sync-period", 30*time.Second, "ipvs.syncPeriod (nftables.syncPeriod for upstream-nftables)")
	flag.IntVar(&o.Updates, "updates", 100, "EndpointSlice updates to time")
	flag.DurationVar(&o.UpdateBudget, "update-budget", 8*time.Minute, "time cap for the updates")
	flag.DurationVar(&o.Idle, "idle", 60*time.Second, "idle window for the CPU measurement")
	flag.DurationVar(&o.ProgramTimeout, "program-timeout", 45*time.Minute, "time cap for programming the cluster, and again for the first syncs to end")
	flag.StringVar(&o.LogPath, "log", "/tmp/kube-proxy.log", "the proxier's log")
	flag.IntVar(&o.Verbosity, "v", 1, "the proxier's log verbosity")
	grep := flag.String("grep", "", "print the proxier's log lines holding this text at the end")
	profile := flag.Bool("profile", false, "enable the proxier's profiling and print a CPU profile of the idle window (base64)")
	flag.DurationVar(&o.StartProfileFor, "profile-start", 0, "print a CPU profile of the proxier's first DURATION (base64; 0: none)")
	flag.Parse()
	o.Progress = func(format string, args ...any) {
		fmt.Printf("    [%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if *profile {
		o.Profile = func(p []byte) { fmt.Println(ProfilePrefix + base64.StdEncoding.EncodeToString(p)) }
	}
	if o.StartProfileFor > 0 {
		o.StartProfile = func(p []byte) { fmt.Println(StartProfilePrefix + base64.StdEncoding.EncodeToString(p)) }
	}
	res, err := kernel.Run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-guest:", err)
		tailLog(o.LogPath)
		os.Exit(1)
	}
	if *grep != "" {
		grepLog(o.LogPath, *grep)
	}
	b, _ := json.Marshal(res)
	fmt.Println(results.KernelResultPrefix + string(b))
}

func grepLog(path, text string) {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, text) {
			fmt.Println("    log:", line)
		}
	}
}

// tailLog prints the end of the proxier's log after a failure.
func tailLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	fmt.Fprintf(os.Stderr, "--- end of %s\n%s\n", path, b)
}
