// Command ipvs-doctor inspects a node's IPVS dataplane for what makes
// Services fail after rollouts, and with --fix deletes the stale state.
package main

import (
	"os"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/doctor"
)

func main() {
	os.Exit(doctor.Main(os.Args[1:], os.Stdout, os.Stderr))
}
