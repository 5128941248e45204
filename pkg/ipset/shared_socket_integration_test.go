//go:build integration

package ipset

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

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
