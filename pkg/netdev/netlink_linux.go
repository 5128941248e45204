package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// dumpAttempts bounds the retries of a link or address dump that the
// kernel interrupted because the table changed meanwhile.
const dumpAttempts = 5

// kernel works on the links and addresses of the calling thread's network
// namespace, which callers keep the namespace New was called in: addresses
// are added and deleted over one socket opened there (the library's
// package-level calls open and close a socket per request, about half of
// binding an address at start-up with 5k Services in the VM); the rest
// opens a socket per request.
type kernel struct {
	local localAddresses
	// mu serialises requests on handle's socket (replies are matched by
	// sequence number; one read by the wrong caller is dropped).
	mu     sync.Mutex
	handle *netlink.Handle
}

// New returns the kernel's link and address tables.
func New() Interface {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err == nil {
		// The library's own timeout for its per-request sockets: a reply
		// that never comes fails the request instead of holding the lock.
		if err = h.SetSocketTimeout(time.Duration(nl.SocketTimeoutTv.Nano())); err != nil {
			h.Close()
		}
	}
	if err != nil {
		klog.V(2).InfoS("Opening a netlink socket per address request", "err", err)
		h = &netlink.Handle{}
	}
	return &kernel{handle: h}
}

// addressLink is the device to add an address to or delete one from. Its
// index is asked of the kernel by name for each write (SIOCGIFINDEX, one
// small ioctl), not taken from netlink.LinkByName, which decodes every
// attribute of the device (9.5 KB allocated each time; a first sync binds
// every Service IP: 95 MB at 10k), nor remembered: once the device is
// deleted, its old index may name another device (one moved into the
// namespace keeps its index when it is free), whose addresses we would
// change.
func addressLink(name string) (netlink.Link, error) {
	index, err := indexByName(name)
	if err != nil {
		return nil, err
	}
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, Index: index}}, nil
}

// indexByName is a device's index; a missing device is an error wrapping
// ENOENT.
func indexByName(name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", name, err)
	}
	defer unix.Close(fd)
	err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
	if errors.Is(err, unix.ENODEV) {
		return 0, fmt.Errorf("device %s: %w", name, syscall.ENOENT)
	}
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// linkByName finds a device; a missing one is an error wrapping ENOENT.
func linkByName(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, fmt.Errorf("device %s: %w", name, syscall.ENOENT)
	}
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", name, err)
	}
	return link, nil
}

func (*kernel) EnsureDummy(name string) error {
	link, err := linkByName(name)
	if errors.Is(err, syscall.ENOENT) {
		klog.V(2).InfoS("Creating dummy device", "device", name)
		err = netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
		if err != nil && !errors.Is(err, syscall.EEXIST) { // EEXIST: created meanwhile
			return fmt.Errorf("create dummy device %s: %w", name, err)
		}
		link, err = linkByName(name)
	}
	if err != nil {
		return fmt.Errorf("ensure dummy device: %w", err)
	}
	if link.Type() != "dummy" {
		return fmt.Errorf("ensure dummy device %s: exists as a %s device: %w", name, link.Type(), syscall.EEXIST)
	}
	if link.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set dummy device %s up: %w", name, err)
	}
	return nil
}

func (*kernel) DeleteDummy(name string) error {
	link, err := linkByName(name)
	if err != nil {
		return fmt.Errorf("delete dummy device: %w", err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete dummy device %s: %w", name, err)
	}
	return nil
}

// Addresses reads the device's addresses with this package's dump reader:
// netlink.AddrList decoded each of kube-ipvs0's addresses into attribute
// slices and net.IPNets (0.86 s of 11 s of an idle minute's CPU at 5k
// Services in the VM).
func (k *kernel) Addresses(name string) ([]netip.Addr, error) {
	index, err := indexByName(name)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	addrs, err := retryDump(func() ([]netip.Addr, error) { return k.local.of(uint32(index)) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	return sortedUnique(addrs), nil
}

func (k *kernel) AddAddress(name string, addr netip.Addr) error {
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("add address to %s: %w", name, err)
	}
	link, err := addressLink(name)
	if err != nil {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	k.mu.Lock()
	err = k.handle.AddrAdd(link, hostAddress(addr))
	k.mu.Unlock()
	if err != nil {
		return fmt.Errorf("add address %s: %w", addressName(addr, name), err)
	}
	return nil
}

func (k *kernel) DeleteAddress(name string, addr netip.Addr) error {
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("delete address from %s: %w", name, err)
	}
	link, err := addressLink(name)
	if err != nil {
		return fmt.Errorf("delete address %s: %w", addr, err)
	}
	k.mu.Lock()
	err = k.handle.AddrDel(link, hostAddress(addr))
	k.mu.Unlock()
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		err = missingAddressError{}
	}
	if err != nil {
		return fmt.Errorf("delete address %s: %w", addressName(addr, name), err)
	}
	return nil
}

func (k *kernel) LocalAddresses(exclude ...string) ([]netip.Addr, error) {
	skipped, err := indexesOf(exclude)
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	result, err := retryDump(func() ([]netip.Addr, error) { return k.local.except(skipped) })
	if err != nil {
		return nil, fmt.Errorf("list local addresses: %w", err)
	}
	return sortedUnique(result), nil
}

// indexesOf are the indexes of the named devices that exist, asked one by
// one (SIOCGIFINDEX) rather than found in a dump of every device, which
// netlink.LinkList decodes whole (42 KB a partial sync on a node of three).
func indexesOf(names []string) (map[uint32]bool, error) {
	indexes := make(map[uint32]bool, len(names))
	for _, name := range names {
		if len(name) >= unix.IFNAMSIZ {
			continue // no device's name is this long (SIOCGIFINDEX would refuse it: EINVAL)
		}
		index, err := indexByName(name)
		if errors.Is(err, syscall.ENOENT) {
			continue // no device: none of its addresses to leave out
		}
		if err != nil {
			return nil, err
		}
		indexes[uint32(index)] = true
	}
	return indexes, nil
}

// retryDump repeats a dump the kernel interrupted (the table changed while
// it was read), which would otherwise give a partial result.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range dumpAttempts {
		var result []T
		result, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return result, err
		}
	}
	return nil, err
}

// hostAddress is addr as a /32 or /128 address; IPv6 ones skip duplicate
// address detection so they are usable at once.
func hostAddress(addr netip.Addr) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}}
	if addr.Is6() {
		a.Flags = syscall.IFA_F_NODAD
	}
	return a
}
