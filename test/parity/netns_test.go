package parity

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/upstreamproxier"
)

// childEnv names the test a re-executed test binary runs in its namespace.
const childEnv = "IPVS_PROXY_PARITY_CHILD"

// dummyDevice is the device both proxiers bind service addresses on.
const dummyDevice = upstreamproxier.DummyDevice

// inOwnNetns runs the calling test again in a child process that lives in
// a fresh network namespace, so that upstream's proxier (whose netlink
// handle for kube-ipvs0 and the node's addresses cannot be replaced from
// outside its package) works on links of the test's own. It returns true
// in that child, where the caller runs the test's body, and false in the
// parent, once the child has finished. The test is skipped when no
// namespace can be made (needs root or unprivileged user namespaces).
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	switch os.Getenv(childEnv) {
	case t.Name():
		return true
	case "":
	default:
		t.Skip("the child process of another parity test")
	}
	err := upstreamproxier.RunInNewNetns(childArgs(t), []string{childEnv + "=" + t.Name()}, os.Stdout, os.Stderr)
	if errors.Is(err, upstreamproxier.ErrNoNetns) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("%s: %v (its output is above)", t.Name(), err)
	}
	return false
}

// childArgs passes the test flags that matter on to the child.
func childArgs(t *testing.T) []string {
	run := "^" + t.Name() + "$"
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		run = f.Value.String() // keeps a subtest selection
	}
	args := []string{"-test.run=" + run, "-test.count=1"}
	for _, name := range []string{"test.v", "test.short", "test.failfast", "test.timeout"} {
		if f := flag.Lookup(name); f != nil {
			args = append(args, fmt.Sprintf("-%s=%s", name, f.Value.String()))
		}
	}
	return args
}

// link is one of the node's network devices with its addresses.
type link struct {
	name  string
	addrs []netip.Prefix
}

// resetLinks makes the namespace hold lo (up), kube-ipvs0 with the given
// addresses and the given links with theirs (upstreamproxier.ResetLinks).
func resetLinks(links []link, bound []netip.Addr) error {
	out := make([]upstreamproxier.Link, 0, len(links))
	for _, l := range links {
		out = append(out, upstreamproxier.Link{Name: l.name, Addrs: l.addrs})
	}
	return upstreamproxier.ResetLinks(out, bound)
}
