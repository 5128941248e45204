package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
)

// newFakeNamespace is a Fake shaped like a fresh network namespace: lo,
// without addresses.
func newFakeNamespace(t *testing.T) Interface {
	f := NewFake()
	if err := f.AddDevice("lo"); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFakeConformance(t *testing.T) {
	runConformance(t, newFakeNamespace)
}

func TestFakeDump(t *testing.T) {
	f := NewFake()
	if err := f.AddDevice("eth0", netip.MustParseAddr("192.168.1.10"), netip.MustParseAddr("2001:db8::10")); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		f.EnsureDummy(dummyName),
		f.AddAddress(dummyName, netip.MustParseAddr("fd00::1")),
		f.AddAddress(dummyName, netip.MustParseAddr("10.96.0.1")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := `eth0 device up
  192.168.1.10
  2001:db8::10
kube-ipvs0 dummy up
  10.96.0.1
  fd00::1
  fe80::ff:fe00:1
`
	if got := f.Dump(); got != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", got, want)
	}
	if err := f.AddDevice("eth0"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("AddDevice of a taken name: %v", err)
	}
}

func TestFakeInjectFailsWithoutChange(t *testing.T) {
	addr := netip.MustParseAddr("10.96.0.1")
	cases := []struct {
		op, object string
		call       func(*Fake) error
	}{
		{"EnsureDummy", "new0", func(f *Fake) error { return f.EnsureDummy("new0") }},
		{"DeleteDummy", dummyName, func(f *Fake) error { return f.DeleteDummy(dummyName) }},
		{"AddAddress", "10.96.0.2 on kube-ipvs0", func(f *Fake) error { return f.AddAddress(dummyName, netip.MustParseAddr("10.96.0.2")) }},
		{"DeleteAddress", "10.96.0.1 on kube-ipvs0", func(f *Fake) error { return f.DeleteAddress(dummyName, addr) }},
	}
	injected := errors.New("injected")
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			f := NewFake()
			if err := errors.Join(f.EnsureDummy(dummyName), f.AddAddress(dummyName, addr)); err != nil {
				t.Fatal(err)
			}
			before := f.Dump()
			var gotOp, gotObject string
			f.Inject = func(op, object string) error {
				gotOp, gotObject = op, object
				return injected
			}
			if err := c.call(f); !errors.Is(err, injected) {
				t.Errorf("got %v, want the injected error", err)
			}
			if gotOp != c.op || gotObject != c.object {
				t.Errorf("Inject(%q, %q), want (%q, %q)", gotOp, gotObject, c.op, c.object)
			}
			if after := f.Dump(); after != before {
				t.Errorf("state changed:\n%s\nwas:\n%s", after, before)
			}
			f.Inject = nil
			if err := c.call(f); err != nil {
				t.Errorf("without injection: %v", err)
			}
		})
	}
}

func TestFakeCountsEveryCall(t *testing.T) {
	f := NewFake()
	addr := netip.MustParseAddr("10.96.0.1")
	_ = f.EnsureDummy(dummyName)
	_ = f.EnsureDummy(dummyName)
	_ = f.AddAddress(dummyName, addr)
	_ = f.AddAddress(dummyName, addr) // fails, still a call
	_, _ = f.Addresses(dummyName)
	_, _ = f.LocalAddresses(dummyName)
	_ = f.DeleteAddress(dummyName, addr)
	_ = f.DeleteDummy(dummyName)
	want := map[string]int{
		"EnsureDummy": 2, "AddAddress": 2, "Addresses": 1, "LocalAddresses": 1, "DeleteAddress": 1, "DeleteDummy": 1,
	}
	if fmt.Sprint(f.Calls) != fmt.Sprint(want) {
		t.Errorf("Calls %v, want %v", f.Calls, want)
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake()
	if err := f.EnsureDummy(dummyName); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_ = f.AddAddress(dummyName, netip.AddrFrom4([4]byte{10, 96, 0, byte(i)}))
			_, _ = f.LocalAddresses()
		})
	}
	wg.Wait()
	addrs, _ := f.Addresses(dummyName)
	if len(addrs) != 21 { // and the link-local
		t.Errorf("%d addresses: %v", len(addrs), addrs)
	}
}
