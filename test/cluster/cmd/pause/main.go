// Command pause is the cluster's pod sandbox process (what registry.k8s.io/pause
// does, without pulling it): PID 1 of each pod's sandbox, it holds the pod's
// namespaces and sleeps until SIGTERM or SIGINT, reaping orphaned children
// meanwhile (as PID 1 must).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			reap()
		}
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
