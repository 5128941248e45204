// Package guest builds a Kubernetes node inside the test VM out of network namespaces: a
// node namespace (the proxier runs there, with a bridge for the pods and a link to a
// client namespace), pods as namespaces running a server process, and helpers to look at
// the kernel state of the node (IPVS, addresses, conntrack, sysctls).
//
// Every namespace switch happens on a locked OS thread that is switched back before it
// is unlocked, so goroutines that are not locked always run in the VM's root namespace.
package guest

import (
	"fmt"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetns runs fn on a locked thread inside ns and returns the thread to the namespace it
// was in. Sockets and processes created by fn belong to ns.
func InNetns(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if orig.Equal(ns) {
		// Already there: setns(2) would need CAP_SYS_ADMIN for nothing, which an
		// unprivileged pod (the cluster's rolling-client) does not have.
		runtime.UnlockOSThread()
		return fn()
	}
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: Go discards it when the goroutine ends.
		return fmt.Errorf("return to netns %s: %w", orig, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// NewNetns creates a network namespace without leaving the caller in it.
func NewNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.New() // the thread is now in ns
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("create netns: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		ns.Close()
		return netns.None(), fmt.Errorf("return to netns %s: %w", orig, err)
	}
	runtime.UnlockOSThread()
	return ns, nil
}

// StartIn starts cmd with ns as its network namespace.
func StartIn(ns netns.NsHandle, cmd *exec.Cmd) error {
	return InNetns(ns, func() error {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", cmd.Path, err)
		}
		return nil
	})
}

// RunIn runs cmd with ns as its network namespace and returns its combined output.
func RunIn(ns netns.NsHandle, cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := InNetns(ns, func() error {
		var err error
		out, err = cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("run %s: %w: %s", cmd.Args, err, out)
		}
		return nil
	})
	return out, err
}
