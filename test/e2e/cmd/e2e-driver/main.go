// Command e2e-driver runs the e2e scenarios inside the test VM (hack/e2e.sh boots it):
//
//	e2e-driver run -profile stock -kubeconfig K -ours BIN -upstream BIN \
//	    -run rolling=ours-gate-off,ours-gate-on -run udp=ours-gate-on ...
//	e2e-driver pod-server NAME     (a pod's process; started by the driver itself)
//
// It acts as kubelet and EndpointSlice controller through the real API server, prints
// each step and each run's figures and checks, writes every run as data lines for the
// host (results.DataPrefix), and exits 1 when a check failed.
package main

import (
	"fmt"
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2e-driver run [flags] | pod-server NAME")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pod-server":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: e2e-driver pod-server NAME")
			os.Exit(2)
		}
		if err := guest.ServePod(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "run":
		os.Exit(run(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "e2e-driver: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
