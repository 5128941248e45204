//go:build integration

package sysctl

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// enterNewNetns moves the calling goroutine, locked to its thread, into a
// fresh network namespace until the test ends: /proc/sys/net then shows
// that namespace's parameters.
func enterNewNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the goroutine ends.
			t.Errorf("restore netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
}

// Needs ip_vs loaded: it registers net/ipv4/vs/* in every namespace.
func TestProcSysConformance(t *testing.T) {
	enterNewNetns(t)
	runConformance(t, New())
}

// A value written in one namespace is not seen from a fresh one.
func TestProcSysIsPerNamespace(t *testing.T) {
	enterNewNetns(t)
	table := New()
	if err := table.Set(conntrackName, 1); err != nil {
		t.Fatal(err)
	}
	t.Run("fresh namespace", func(t *testing.T) {
		enterNewNetns(t)
		if v, err := table.Get(conntrackName); err != nil || v != 0 {
			t.Errorf("Get in a fresh namespace = %d, %v; want 0", v, err)
		}
	})
	if v, err := table.Get(conntrackName); err != nil || v != 1 {
		t.Errorf("Get back in the first namespace = %d, %v; want 1", v, err)
	}
}
