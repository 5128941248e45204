package ipvs

import (
	"context"
	"errors"
)

// Proxier programs one IP family's services into IPVS. It implements
// k8s.io/kubernetes/pkg/proxy.Provider.
type Proxier struct{}

// NewProxier checks the kernel prerequisites (sysctls, dummy device) and
// returns a proxier ready for informer events; SyncLoop runs it.
func NewProxier(ctx context.Context, cfg Config, deps Deps) (*Proxier, error) {
	return nil, errors.New("not implemented yet")
}

// CleanupLeftovers removes every IPVS service, address, ipset, chain and
// rule that the proxier creates (kube-proxy --cleanup). It reports whether
// anything failed.
func CleanupLeftovers(ctx context.Context, deps Deps) error {
	return errors.New("not implemented yet")
}
