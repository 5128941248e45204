// Command test-server is the cluster's test-server image's process: the e2e pod server
// (test/e2e/guest.ServePod) answering with its pod name on HTTP 8080, TCP echo 9000 and
// UDP 5353, on IPv4 and IPv6. The name is $POD_NAME, else the host name (a pod's host
// name is its name). It exits 0 on SIGTERM or SIGINT: graceful-termination behaviour
// (preStop sleep, readiness during shutdown) comes from the pod spec.
// hack/cluster/images.sh packages it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ipvs-proxy/ipvs-proxy/test/e2e/guest"
)

func main() {
	name, err := podName()
	if err != nil {
		fmt.Fprintf(os.Stderr, "test-server: %v\n", err)
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- guest.ServePod(name) }()
	select {
	case s := <-signals:
		fmt.Fprintf(os.Stderr, "test-server %s: got %v, exiting\n", name, s)
	case err := <-served:
		fmt.Fprintf(os.Stderr, "test-server %s: %v\n", name, err)
		os.Exit(1)
	}
}

func podName() (string, error) {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name, nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("pod name: no $POD_NAME and no host name: %w", err)
	}
	return name, nil
}
