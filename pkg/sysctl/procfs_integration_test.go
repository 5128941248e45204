//go:build integration

package sysctl

import (
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// Needs ip_vs loaded: it registers net/ipv4/vs/* in every namespace.
func TestProcSysConformance(t *testing.T) {
	nettest.EnterNewNetns(t)
	runConformance(t, New())
}

// A value written in one namespace is not seen from a fresh one.
func TestProcSysIsPerNamespace(t *testing.T) {
	nettest.EnterNewNetns(t)
	table := New()
	if err := table.Set(conntrackName, 1); err != nil {
		t.Fatal(err)
	}
	t.Run("fresh namespace", func(t *testing.T) {
		nettest.EnterNewNetns(t)
		if v, err := table.Get(conntrackName); err != nil || v != 0 {
			t.Errorf("Get in a fresh namespace = %d, %v; want 0", v, err)
		}
	})
	if v, err := table.Get(conntrackName); err != nil || v != 1 {
		t.Errorf("Get back in the first namespace = %d, %v; want 1", v, err)
	}
}
