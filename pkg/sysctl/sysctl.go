// Package sysctl reads and writes integer kernel parameters under /proc/sys.
package sysctl

// Interface reads and writes sysctls named like "net/ipv4/vs/conntrack".
// A missing parameter gives an error wrapping syscall.ENOENT.
type Interface interface {
	Get(name string) (int, error)
	Set(name string, value int) error
}
