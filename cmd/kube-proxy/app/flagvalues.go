package app

import (
	"fmt"
	"net"
	"strconv"

	netutils "k8s.io/utils/net"
)

// ipValue is an IP address flag (upstream's "ip" type). An empty value
// leaves the target unchanged, as upstream does.
type ipValue struct{ target *string }

func (v ipValue) Set(s string) error {
	if s == "" {
		return nil
	}
	if netutils.ParseIPSloppy(s) == nil {
		return fmt.Errorf("%q is not a valid IP address", s)
	}
	*v.target = s
	return nil
}

func (v ipValue) String() string { return *v.target }
func (v ipValue) Type() string   { return "ip" }

// ipPortValue is an "IP" or "IP:port" flag (upstream's "ipport" type).
type ipPortValue struct{ target *string }

func (v ipPortValue) Set(s string) error {
	if s == "" {
		return nil
	}
	if netutils.ParseIPSloppy(s) != nil {
		*v.target = s
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not in a valid format (ip or ip:port): %w", s, err)
	}
	if netutils.ParseIPSloppy(host) == nil {
		return fmt.Errorf("%q is not a valid IP address", host)
	}
	if _, err := netutils.ParsePort(port, true); err != nil {
		return fmt.Errorf("%q is not a valid port number", port)
	}
	*v.target = s
	return nil
}

func (v ipPortValue) String() string { return *v.target }
func (v ipPortValue) Type() string   { return "ipport" }

// namedString binds a flag to a string-kinded config type (ProxyMode,
// LocalMode); the value is checked later, with the config file's.
type namedString[T ~string] struct {
	target   *T
	typeName string
}

func (v namedString[T]) Set(s string) error { *v.target = T(s); return nil }
func (v namedString[T]) String() string     { return string(*v.target) }
func (v namedString[T]) Type() string       { return v.typeName }

// versionValue is --version: "true" prints the version, "raw" prints every
// build detail.
type versionValue string

const (
	versionOff = versionValue("false")
	versionOn  = versionValue("true")
	versionRaw = versionValue("raw")
)

func (v *versionValue) Set(s string) error {
	if s == string(versionRaw) {
		*v = versionRaw
		return nil
	}
	on, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true, false or raw", s)
	}
	*v = versionOff
	if on {
		*v = versionOn
	}
	return nil
}

func (v *versionValue) String() string   { return string(*v) }
func (v *versionValue) Type() string     { return "version" }
func (v *versionValue) IsBoolFlag() bool { return true }
