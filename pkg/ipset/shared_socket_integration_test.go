//go:build integration

package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// Many goroutines, on threads of any namespace, add and delete members over
// New's one socket while others list: every request gets its own answer
// (EEXIST and ENOENT replies on the shared socket do not leak into the next
// request), lists never fail, and the sets end exactly as asked, in New's
// namespace.
func TestKernelConcurrentRequestsOverOneSocket(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New()
	const workers, perWorker = 8, 60
	sets := []Set{{Name: "ips", Type: HashIP, Family: Inet}, {Name: "ports", Type: BitmapPort, PortRange: "0-65535"}}
	for _, s := range sets {
		if err := kernel.CreateSet(s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*4+2)
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := kernel.List(nil); err != nil {
					errs <- fmt.Errorf("List: %w", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	var workersWG sync.WaitGroup
	for w := range workers {
		workersWG.Go(func() {
			for i := range perWorker {
				ip := Entry{IP: netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)})}
				port := Entry{Port: uint16(w*1000 + i)}
				for _, step := range []struct {
					name string
					do   func() error
					want error
				}{
					{"add ip", func() error { return kernel.AddEntry("ips", ip) }, nil},
					{"add ip again", func() error { return kernel.AddEntry("ips", ip) }, syscall.EEXIST},
					{"add port", func() error { return kernel.AddEntry("ports", port) }, nil},
					{"add port again", func() error { return kernel.AddEntry("ports", port) }, syscall.EEXIST},
					{"delete missing", func() error {
						return kernel.DeleteEntry("ips", Entry{IP: netip.AddrFrom4([4]byte{11, byte(w), byte(i >> 8), byte(i)})})
					}, syscall.ENOENT},
					{"add to missing set", func() error { return kernel.AddEntry(fmt.Sprintf("missing%d", w), ip) }, syscall.ENOENT},
				} {
					err := step.do()
					if (step.want == nil && err != nil) || (step.want != nil && !errors.Is(err, step.want)) {
						errs <- fmt.Errorf("worker %d entry %d: %s: %v, want %v", w, i, step.name, err, step.want)
						return
					}
				}
				if i%2 == 1 {
					if err := kernel.DeleteEntry("ips", ip); err != nil {
						errs <- fmt.Errorf("worker %d: delete %v: %w", w, ip, err)
						return
					}
					if err := kernel.DeleteEntry("ports", port); err != nil {
						errs <- fmt.Errorf("worker %d: delete %v: %w", w, port, err)
						return
					}
				}
			}
		})
	}
	workersWG.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := kernel.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, c := range got {
		counts[c.Name] = len(c.Entries)
	}
	if want := workers * perWorker / 2; counts["ips"] != want || counts["ports"] != want {
		t.Errorf("members left: %v, want %d in each of ips and ports", counts, want)
	}
}

// TestKernelListAfterAnAbandonedDump leaves a dump unfinished on New's
// socket (its first datagram does not fit the receive buffer, as a reply
// that never comes would leave it on the receive timeout): the kernel keeps
// that dump open and would refuse the next one on the socket (EBUSY), so
// the next List must still read every set, and requests after it work.
func TestKernelListAfterAnAbandonedDump(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New().(*kernel)
	big := Contents{Set: Set{Name: "big", Type: HashIP, Family: Inet}}
	ip := netip.MustParseAddr("10.0.0.0")
	for range 2000 {
		ip = ip.Next()
		big.Entries = append(big.Entries, Entry{IP: ip})
	}
	restore(t, kernel, big)
	for _, keep := range []func(string) bool{nil, func(string) bool { return true }} {
		kernel.mu.Lock()
		kernel.buf = make([]byte, 512)
		kernel.mu.Unlock()
		if _, err := kernel.List(keep); err == nil {
			t.Fatal("List with a 512-byte buffer succeeded; want the too-large reply's error")
		}
		kernel.mu.Lock()
		kernel.buf = nil
		kernel.mu.Unlock()
		got, err := kernel.List(keep)
		if err != nil {
			t.Fatalf("List after an abandoned dump: %v", err)
		}
		if len(got) != 1 || len(got[0].Entries) != len(big.Entries) {
			t.Fatalf("List after an abandoned dump: %d sets; want big with %d members", len(got), len(big.Entries))
		}
	}
	if err := kernel.AddEntry("big", Entry{IP: ip.Next()}); err != nil {
		t.Errorf("AddEntry after the abandoned dumps: %v", err)
	}
}

// abandonThenList leaves a dump of every set unfinished on kernel's socket
// (a 512-byte buffer does not hold its first datagram), then lists every set.
func abandonThenList(kernel *kernel) ([]Contents, error) {
	kernel.mu.Lock()
	kernel.buf = make([]byte, 512)
	kernel.mu.Unlock()
	if _, err := kernel.List(nil); err == nil {
		return nil, errors.New("List with a 512-byte buffer succeeded; want the too-large reply's error")
	}
	kernel.mu.Lock()
	kernel.buf = nil
	kernel.mu.Unlock()
	return kernel.List(nil)
}

// bigSet is a set whose dump takes several datagrams.
func bigSet() Contents {
	big := Contents{Set: Set{Name: "big", Type: HashIP, Family: Inet}}
	ip := netip.MustParseAddr("10.0.0.0")
	for range 2000 {
		ip = ip.Next()
		big.Entries = append(big.Entries, Entry{IP: ip})
	}
	return big
}

// TestKernelRenewSocketFromAnotherNamespace abandons a dump and lists
// again from a goroutine whose thread is in the root namespace: the socket
// that replaces the abandoned one is opened in New's namespace (the list
// holds the set made there, which the root namespace has not).
func TestKernelRenewSocketFromAnotherNamespace(t *testing.T) {
	ns := nettest.EnterNewNetns(t)
	kernel := New().(*kernel)
	big := bigSet()
	restore(t, kernel, big)
	var got []Contents
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A thread no test goroutine holds: in the root namespace.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		here, hereErr := netns.Get()
		if hereErr == nil {
			defer here.Close()
		}
		if hereErr != nil || here.Equal(ns) {
			err = fmt.Errorf("the goroutine's thread is in the test's namespace (%v)", hereErr)
			return
		}
		got, err = abandonThenList(kernel)
	}()
	<-done
	if err != nil {
		t.Fatalf("List after an abandoned dump, from the root namespace: %v", err)
	}
	if len(got) != 1 || got[0].Name != "big" || len(got[0].Entries) != len(big.Entries) {
		t.Fatalf("List after an abandoned dump, from the root namespace: %s; want big with %d members", summary(got), len(big.Entries))
	}
}

// TestKernelRenewSocketWithoutSysAdmin abandons a dump on a thread without
// CAP_SYS_ADMIN (a proxy given CAP_NET_ADMIN, not privileged), in New's
// namespace: the new socket needs no setns(2) there, and the next List
// reads every set instead of the old socket's EBUSY.
func TestKernelRenewSocketWithoutSysAdmin(t *testing.T) {
	nettest.EnterNewNetns(t)
	kernel := New().(*kernel)
	big := bigSet()
	restore(t, kernel, big)
	dropEffectiveCap(t, unix.CAP_SYS_ADMIN)
	got, err := abandonThenList(kernel)
	if err != nil {
		t.Fatalf("List after an abandoned dump, without CAP_SYS_ADMIN: %v", err)
	}
	if len(got) != 1 || len(got[0].Entries) != len(big.Entries) {
		t.Fatalf("List after an abandoned dump, without CAP_SYS_ADMIN: %s; want big with %d members", summary(got), len(big.Entries))
	}
}

// dropEffectiveCap takes capability c out of the effective set of the
// calling thread (locked to it: capabilities are per thread) until the
// test's end; it stays permitted, so the clean-up takes it back.
func dropEffectiveCap(t *testing.T, c uint) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatalf("capget: %v", err)
	}
	saved := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatalf("capset without capability %d: %v", c, err)
	}
	t.Cleanup(func() {
		if err := unix.Capset(&hdr, &saved[0]); err != nil {
			t.Errorf("capset back: %v", err)
		}
	})
}
