package netdev

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory link and address table as strict as the kernel's:
// binding an address already on the device is EEXIST, naming a missing
// device is ENOENT, deleting an address not on the device is EADDRNOTAVAIL
// matching ENOENT. Like the kernel, a new dummy gets an IPv6 link-local
// address when it goes up (fe80::ff:fe00:1 for the first, then :2, ...);
// callers reconciling the dummy's addresses must leave it alone.
type Fake struct {
	// Inject, when set, is called before every mutating call with the
	// method name ("EnsureDummy", "DeleteDummy", "AddAddress",
	// "DeleteAddress") and the object: the device name, or
	// "10.96.0.1 on kube-ipvs0" for an address. A non-nil error fails the
	// call without a change. It must not call the Fake.
	Inject func(op, object string) error
	// Calls counts the calls of every Interface method, by name.
	Calls map[string]int

	mu      sync.Mutex
	devices map[string]*fakeDevice
	// dummiesCreated numbers the link-local address of each new dummy.
	dummiesCreated uint16
}

type fakeDevice struct {
	dummy bool
	up    bool
	addrs map[netip.Addr]bool
}

var _ Interface = (*Fake)(nil)

// NewFake returns a table without devices.
func NewFake() *Fake {
	return &Fake{Calls: map[string]int{}, devices: map[string]*fakeDevice{}}
}

// AddDevice adds a device that is not ours (like eth0 or lo), up, with
// addresses, for LocalAddresses (a test helper: not counted in Calls, not
// subject to Inject). EEXIST if the name is taken.
func (f *Fake) AddDevice(name string, addrs ...netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.devices[name]; ok {
		return fmt.Errorf("add device %s: %w", name, syscall.EEXIST)
	}
	dev := &fakeDevice{up: true, addrs: map[netip.Addr]bool{}}
	for _, a := range addrs {
		if err := checkAddress(a); err != nil {
			return fmt.Errorf("add device %s: %w", name, err)
		}
		dev.addrs[a] = true
	}
	f.devices[name] = dev
	return nil
}

// count records a call of method and returns with f.mu held.
func (f *Fake) count(method string) {
	f.mu.Lock()
	f.Calls[method]++
}

// begin records a mutating call, asks Inject, and returns with f.mu held
// when the call may go on; on an injected error f.mu is released.
func (f *Fake) begin(method, object string) error {
	f.count(method)
	inject := f.Inject
	if inject == nil {
		return nil
	}
	f.mu.Unlock()
	if err := inject(method, object); err != nil {
		return err
	}
	f.mu.Lock()
	return nil
}

func (f *Fake) device(name string) (*fakeDevice, error) {
	dev, ok := f.devices[name]
	if !ok {
		return nil, fmt.Errorf("device %s: %w", name, syscall.ENOENT)
	}
	return dev, nil
}

func (f *Fake) EnsureDummy(name string) error {
	if err := f.begin("EnsureDummy", name); err != nil {
		return fmt.Errorf("ensure dummy device %s: %w", name, err)
	}
	defer f.mu.Unlock()
	dev, ok := f.devices[name]
	if !ok {
		f.dummiesCreated++
		dev = &fakeDevice{dummy: true, addrs: map[netip.Addr]bool{}}
		f.devices[name] = dev
	}
	if !dev.dummy {
		return fmt.Errorf("ensure dummy device %s: exists as another kind of device: %w", name, syscall.EEXIST)
	}
	if !dev.up {
		// Like the kernel's IPv6 autoconfiguration when the link goes up.
		dev.addrs[fakeLinkLocal(f.dummiesCreated)] = true
		dev.up = true
	}
	return nil
}

// fakeLinkLocal is the fake's stand-in for the link-local address the
// kernel derives from a new dummy's random MAC: fe80::ff:fe00:n.
func fakeLinkLocal(n uint16) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 11: 0xff, 12: 0xfe, 14: byte(n >> 8), 15: byte(n)})
}

func (f *Fake) DeleteDummy(name string) error {
	if err := f.begin("DeleteDummy", name); err != nil {
		return fmt.Errorf("delete dummy device %s: %w", name, err)
	}
	defer f.mu.Unlock()
	if _, err := f.device(name); err != nil {
		return fmt.Errorf("delete dummy device: %w", err)
	}
	delete(f.devices, name)
	return nil
}

func (f *Fake) Addresses(name string) ([]netip.Addr, error) {
	f.count("Addresses")
	defer f.mu.Unlock()
	dev, err := f.device(name)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return sortedUnique(slices.Collect(maps.Keys(dev.addrs))), nil
}

func (f *Fake) AddAddress(name string, addr netip.Addr) error {
	if err := f.begin("AddAddress", addressName(addr, name)); err != nil {
		return fmt.Errorf("add address %s: %w", addressName(addr, name), err)
	}
	defer f.mu.Unlock()
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("add address to %s: %w", name, err)
	}
	dev, err := f.device(name)
	if err != nil {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	if dev.addrs[addr] {
		return fmt.Errorf("add address %s: %w", addressName(addr, name), syscall.EEXIST)
	}
	dev.addrs[addr] = true
	return nil
}

func (f *Fake) DeleteAddress(name string, addr netip.Addr) error {
	if err := f.begin("DeleteAddress", addressName(addr, name)); err != nil {
		return fmt.Errorf("delete address %s: %w", addressName(addr, name), err)
	}
	defer f.mu.Unlock()
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("delete address from %s: %w", name, err)
	}
	dev, err := f.device(name)
	if err != nil {
		return fmt.Errorf("delete address %s: %w", addr, err)
	}
	if !dev.addrs[addr] {
		return fmt.Errorf("delete address %s: %w", addressName(addr, name), missingAddressError{})
	}
	delete(dev.addrs, addr)
	return nil
}

func (f *Fake) LocalAddresses(exclude ...string) ([]netip.Addr, error) {
	f.count("LocalAddresses")
	defer f.mu.Unlock()
	var result []netip.Addr
	for name, dev := range f.devices {
		if !slices.Contains(exclude, name) {
			result = slices.AppendSeq(result, maps.Keys(dev.addrs))
		}
	}
	return sortedUnique(result), nil
}

// Dump lists the devices by name, each followed by its sorted addresses:
//
//	eth0 device up
//	  192.168.1.10
//	kube-ipvs0 dummy up
//	  10.96.0.1
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.devices)) {
		dev := f.devices[name]
		kind, state := "device", "down"
		if dev.dummy {
			kind = "dummy"
		}
		if dev.up {
			state = "up"
		}
		fmt.Fprintf(&b, "%s %s %s\n", name, kind, state)
		for _, a := range sortedUnique(slices.Collect(maps.Keys(dev.addrs))) {
			fmt.Fprintf(&b, "  %s\n", a)
		}
	}
	return b.String()
}
