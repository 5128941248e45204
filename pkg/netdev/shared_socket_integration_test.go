//go:build integration

package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// Goroutines on several threads (each moved into the namespace, as callers
// keep it) add and delete addresses over New's one socket: each request
// gets its own answer (EEXIST and EADDRNOTAVAIL replies do not leak into
// the next one) and the device ends with exactly the addresses kept.
func TestKernelAddressesConcurrentlyOverOneSocket(t *testing.T) {
	ns := nettest.EnterNewNetns(t)
	table := New()
	if err := table.EnsureDummy(dummyName); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 6, 120
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			runtime.LockOSThread() // never unlocked: Go discards the moved thread
			if err := netns.Set(ns); err != nil {
				errs <- err
				return
			}
			for i := range perWorker {
				v4 := netip.AddrFrom4([4]byte{10, 96, byte(w), byte(i)})
				v6 := netip.AddrFrom16([16]byte{0xfd, 0, 13: byte(w), 14: byte(i >> 8), 15: byte(i)})
				for _, a := range []netip.Addr{v4, v6} {
					if err := table.AddAddress(dummyName, a); err != nil {
						errs <- fmt.Errorf("add %s: %w", a, err)
						return
					}
					if err := table.AddAddress(dummyName, a); !errors.Is(err, syscall.EEXIST) {
						errs <- fmt.Errorf("add %s again: %v, want EEXIST", a, err)
						return
					}
					if i%2 == 1 {
						if err := table.DeleteAddress(dummyName, a); err != nil {
							errs <- fmt.Errorf("delete %s: %w", a, err)
							return
						}
						if err := table.DeleteAddress(dummyName, a); !errors.Is(err, syscall.EADDRNOTAVAIL) {
							errs <- fmt.Errorf("delete %s again: %v, want EADDRNOTAVAIL", a, err)
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := table.Addresses(dummyName)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range got {
		if netip.MustParsePrefix("10.96.0.0/16").Contains(a) || netip.MustParsePrefix("fd00::/16").Contains(a) {
			n++
		}
	}
	if want := workers * perWorker; n != want {
		t.Errorf("%s has %d of the addresses, want %d (all: %d)", dummyName, n, want, len(got))
	}
}
