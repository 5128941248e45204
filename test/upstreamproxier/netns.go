package upstreamproxier

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// ErrNoNetns says that this process may not make a network namespace
// (it needs root or unprivileged user namespaces).
var ErrNoNetns = errors.New("cannot make a network namespace")

// RunInNewNetns runs this process's binary again with args, and env added
// to the environment, in a fresh network namespace: made with CLONE_NEWNET
// when root, else with an unprivileged user namespace (uid 0 inside). The
// child dies with the parent. It waits for the child; an error wrapping
// ErrNoNetns means no way of starting it worked.
func RunInNewNetns(args, env []string, stdout, stderr io.Writer) error {
	var startErr error
	for _, attr := range namespaceAttrs() {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			startErr = errors.Join(startErr, err)
			continue
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("run %s in a network namespace of its own: %w", os.Args[0], err)
		}
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNoNetns, startErr)
}

// namespaceAttrs are the ways to start the child, tried in order.
func namespaceAttrs() []*syscall.SysProcAttr {
	userns := &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if os.Geteuid() != 0 {
		return []*syscall.SysProcAttr{userns}
	}
	return []*syscall.SysProcAttr{{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}, userns}
}
