package sysctl

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// procfs reads and writes the files under root (/proc/sys). Files under
// /proc/sys/net belong to the network namespace of the calling thread.
type procfs struct {
	root string
}

// New returns the sysctls of /proc/sys.
func New() Interface {
	return procfs{root: "/proc/sys"}
}

// checkName accepts a relative, clean, slash-separated name that stays
// under /proc/sys, like "net/ipv4/vs/conntrack".
func checkName(name string) error {
	if name == "" || name == "." || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("sysctl name %q must be relative and clean, like net/ipv4/vs/conntrack: %w", name, syscall.EINVAL)
	}
	return nil
}

func (p procfs) Get(name string) (int, error) {
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("read sysctl: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(p.root, name))
	if err != nil {
		return 0, fmt.Errorf("read sysctl %s: %w", name, err)
	}
	value, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("read sysctl %s: not one integer: %w", name, err)
	}
	return value, nil
}

func (p procfs) Set(name string, value int) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("write sysctl: %w", err)
	}
	// No O_CREATE: a missing parameter must fail with ENOENT.
	file, err := os.OpenFile(filepath.Join(p.root, name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write sysctl %s: %w", name, err)
	}
	_, err = file.WriteString(strconv.Itoa(value))
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write sysctl %s = %d: %w", name, value, err)
	}
	return nil
}
