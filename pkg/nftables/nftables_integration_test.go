//go:build integration

package nftables

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// TestDeleteTable creates kube-proxy's nftables-mode tables in a fresh
// namespace (NEWTABLE over the same netlink path), deletes them, and checks
// that a second deletion reports ENOENT and that the kernel agrees.
func TestDeleteTable(t *testing.T) {
	nettest.EnterNewNetns(t)
	tables := New()
	for _, family := range []Family{IPv4, IPv6} {
		if err := runTableMessage(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, family, "kube-proxy"); err != nil {
			t.Fatalf("create %s kube-proxy: %v", family, err)
		}
		if err := runTableMessage(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, family, "kube-proxy"); !errors.Is(err, syscall.EEXIST) {
			t.Fatalf("create %s kube-proxy again: %v, want EEXIST (the table exists)", family, err)
		}
		if err := tables.DeleteTable(family, "kube-proxy"); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := tables.DeleteTable(family, "kube-proxy"); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("second delete of %s kube-proxy: %v, want ENOENT", family, err)
		}
		if err := runTableMessage(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, family, "kube-proxy"); err != nil {
			t.Errorf("the kernel still has %s kube-proxy after the delete: %v", family, err)
		}
	}
	if err := tables.DeleteTable(IPv4, "no-such-table"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("delete of a missing table: %v, want ENOENT", err)
	}
}
