package upstreamproxier

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"time"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	kubeproxyconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	"k8s.io/kubernetes/pkg/proxy/conntrack"
	upstreamnft "k8s.io/kubernetes/pkg/proxy/nftables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	"sigs.k8s.io/knftables"
)

// NFTablesTable is the table upstream's nftables proxier owns.
const NFTablesTable = "kube-proxy"

// NFTables is the fake kernel of upstream's nftables proxier: knftables'
// Fake (as upstream's unit tests use it), every call counted as
// "nft.<Method>" (one Run is one transaction: one `nft -f` or one netlink
// batch), the operations (add, delete, flush... commands) of the
// transactions it ran, and the time and heap allocations spent inside the
// Fake, which are the fake's and not the proxier's: its Run copies the
// whole table and looks up each element and rule by a linear scan. Read
// Fake only while the proxier does not sync.
type NFTables struct {
	Fake  *knftables.Fake
	Calls *Calls

	mu         sync.Mutex
	operations int
	inFake     InFake
}

// InFake is what the calls into knftables' Fake cost.
type InFake struct {
	Duration   time.Duration
	AllocBytes uint64
}

var _ knftables.Interface = (*NFTables)(nil)

// NewNFTables makes an empty fake for one family.
func NewNFTables(family v1.IPFamily) *NFTables {
	f := knftables.IPv4Family
	if family == v1.IPv6Protocol {
		f = knftables.IPv6Family
	}
	return &NFTables{Fake: knftables.NewFake(f, NFTablesTable), Calls: newCalls()}
}

// Operations is the number of operations in the transactions run since
// the last ResetOperations.
func (n *NFTables) Operations() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.operations
}

// InFake is the time and heap allocated inside the Fake's calls since the
// last ResetOperations.
func (n *NFTables) InFake() InFake {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inFake
}

// ResetOperations sets the operation count and InFake to zero.
func (n *NFTables) ResetOperations() {
	n.mu.Lock()
	n.operations = 0
	n.inFake = InFake{}
	n.mu.Unlock()
}

// call counts one call of the Fake and measures it (the proxier calls
// nft from one goroutine, so the heap allocated meanwhile is the Fake's).
func (n *NFTables) call(method string, f func()) {
	n.Calls.add("nft." + method)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	n.mu.Lock()
	n.inFake.Duration += elapsed
	n.inFake.AllocBytes += after.TotalAlloc - before.TotalAlloc
	n.mu.Unlock()
}

func (n *NFTables) NewTransaction() *knftables.Transaction { return n.Fake.NewTransaction() }

func (n *NFTables) Run(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.mu.Lock()
	n.operations += tx.NumOperations()
	n.mu.Unlock()
	n.call("Run", func() { err = n.Fake.Run(ctx, tx) })
	return err
}

func (n *NFTables) Check(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.call("Check", func() { err = n.Fake.Check(ctx, tx) })
	return err
}

func (n *NFTables) ListAll(ctx context.Context) (out map[string][]string, err error) {
	n.call("ListAll", func() { out, err = n.Fake.ListAll(ctx) })
	return out, err
}

func (n *NFTables) List(ctx context.Context, objectType string) (out []string, err error) {
	n.call("List", func() { out, err = n.Fake.List(ctx, objectType) })
	return out, err
}

func (n *NFTables) ListRules(ctx context.Context, chain string) (out []*knftables.Rule, err error) {
	n.call("ListRules", func() { out, err = n.Fake.ListRules(ctx, chain) })
	return out, err
}

func (n *NFTables) ListElements(ctx context.Context, objectType, name string) (out []*knftables.Element, err error) {
	n.call("ListElements", func() { out, err = n.Fake.ListElements(ctx, objectType, name) })
	return out, err
}

func (n *NFTables) ListCounters(ctx context.Context) (out []*knftables.Counter, err error) {
	n.call("ListCounters", func() { out, err = n.Fake.ListCounters(ctx) })
	return out, err
}

// NewNFTablesProxier makes upstream's nftables proxier for one family with
// nft on the fake and upstream's conntrack fake, a no-op local traffic
// detector, no event recorder and no health server.
//
// Upstream's NewProxier takes no nftables interface: it probes the nft
// binary (knftables.New) and keeps its own, and its unit tests build the
// struct inside the package. So NewProxier runs against a stub nft that
// only answers the probe (withStubNFT), and the two unexported fields are
// then pointed at the fakes, before any sync.
func NewNFTablesProxier(ctx context.Context, cfg *kubeproxyconfig.KubeProxyConfiguration, family v1.IPFamily,
	nodeName string, nodeIP net.IP, nft *NFTables) (*upstreamnft.Proxier, error) {
	var p *upstreamnft.Proxier
	err := withStubNFT(func() (err error) {
		p, err = upstreamnft.NewProxier(ctx, cfg, family, proxyutil.NewNoOpLocalDetector(), nodeName, nodeIP, nil, nil, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("upstream nftables NewProxier %s: %w", family, err)
	}
	if err := setUnexported(p, "nftables", knftables.Interface(nft)); err != nil {
		return nil, err
	}
	if err := setUnexported(p, "conntrack", conntrack.NewFake()); err != nil {
		return nil, err
	}
	return p, nil
}

// setUnexported sets p's unexported field name to v.
func setUnexported(p *upstreamnft.Proxier, name string, v any) error {
	f := reflect.ValueOf(p).Elem().FieldByName(name)
	if !f.IsValid() {
		return fmt.Errorf("upstream nftables Proxier has no field %q", name)
	}
	val := reflect.ValueOf(v)
	if !val.Type().AssignableTo(f.Type()) {
		return fmt.Errorf("upstream nftables Proxier field %q is %s, not %s", name, f.Type(), val.Type())
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(val)
	return nil
}

// stubNFT answers knftables.New's probe: `nft --version` with a supported
// version, `nft --check -f -` with success. It never sees a real rule.
const stubNFT = `#!/bin/sh
if [ "$1" = --version ]; then echo "nftables v1.1.1 (stub for the fakes)"; exit 0; fi
cat >/dev/null
exit 0
`

// withStubNFT runs f with a stub nft first on this process's PATH and
// upstream's kernel version check skipped (the kernel is never used), then
// restores the environment and removes the stub.
func withStubNFT(f func() error) error {
	bin, err := os.MkdirTemp("", "stub-nft-")
	if err != nil {
		return fmt.Errorf("make the stub nft's directory: %w", err)
	}
	defer os.RemoveAll(bin)
	if err := os.WriteFile(filepath.Join(bin, "nft"), []byte(stubNFT), 0o755); err != nil {
		return fmt.Errorf("write the stub nft: %w", err)
	}
	defer restoreEnv("PATH")()
	defer restoreEnv("KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK")()
	if err := os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		return fmt.Errorf("put the stub nft on PATH: %w", err)
	}
	if err := os.Setenv("KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK", "1"); err != nil {
		return fmt.Errorf("skip upstream's kernel version check: %w", err)
	}
	return f()
}

// restoreEnv returns a function that puts the variable back as it is now.
func restoreEnv(name string) func() {
	old, set := os.LookupEnv(name)
	return func() {
		if set {
			_ = os.Setenv(name, old)
		} else {
			_ = os.Unsetenv(name)
		}
	}
}
