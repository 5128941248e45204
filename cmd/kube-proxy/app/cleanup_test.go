package app

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/nftables"
)

// leaveEveryMode puts on the host what each upstream mode leaves: an IPVS
// service and an ipset (ipvs), a nat chain with its jump (iptables), and
// the nftables mode's tables.
func leaveEveryMode(t *testing.T, h *testHost) {
	t.Helper()
	svc := ipvs.Service{ServiceKey: ipvs.ServiceKey{Address: netip.MustParseAddr("10.96.0.10"), Protocol: ipvs.TCP, Port: 80}, Scheduler: "rr"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.ipvs.AddService(svc))
	must(h.ipset.CreateSet(ipset.Set{Name: "KUBE-CLUSTER-IP", Type: ipset.HashIPPort, Family: ipset.Inet, Comment: "x"}))
	ipt := h.ipt[v1.IPv4Protocol]
	must(ipt.Restore(iptables.TableNAT, []byte(":KUBE-SERVICES - [0:0]\n:KUBE-SVC-ABC - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-ABC\n")))
	must(ipt.EnsureJump(iptables.TableNAT, "PREROUTING", "KUBE-SERVICES", "-m", "comment", "--comment", "kubernetes service portals"))
	h.nft = nftables.NewFake("ip kube-proxy", "ip6 kube-proxy")
}

// TestCleanupEveryStep: --cleanup attempts every step whatever failed
// before (upstream goes on too), removes every mode's leftovers, names
// each failure, and hints at permissions when not root.
func TestCleanupEveryStep(t *testing.T) {
	cases := []struct {
		name     string
		noIPVS   bool
		euid     int
		wantErr  []string
		wantIPVS bool // the IPVS service is still there
	}{
		{name: "root, everything works"},
		{name: "no IPVS module", noIPVS: true, wantIPVS: true, wantErr: []string{"open IPVS netlink socket", "flush IPVS table"}},
		{name: "not root", noIPVS: true, euid: 1000, wantIPVS: true, wantErr: []string{"not running as root", "CAP_NET_ADMIN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := newTestHost(t)
			leaveEveryMode(t, host)
			host.noIPVS, host.euid = tc.noIPVS, tc.euid
			cmd, err := NewCommand(t.Context(), host.env(), newTestGate(t))
			if err != nil {
				t.Fatal(err)
			}
			cmd.SetArgs([]string{"--cleanup"})
			err = cmd.Execute()
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("--cleanup: %v", err)
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not name %q", err, want)
				}
			}
			if got := host.ipvs.Dump() != ""; got != tc.wantIPVS {
				t.Errorf("IPVS left: %v, want %v", got, tc.wantIPVS)
			}
			if d := host.ipt[v1.IPv4Protocol].Dump(); strings.Contains(d, "KUBE-") {
				t.Errorf("iptables left (a failing IPVS step stopped the rest?):\n%s", d)
			}
			if d := host.ipset.Dump(); d != "" {
				t.Errorf("ipsets left:\n%s", d)
			}
			if left := host.nft.Tables(); len(left) != 0 {
				t.Errorf("nftables tables left: %v", left)
			}
		})
	}
}

// TestStartCleansOnlyTheNFTablesMode: at start, like upstream's kube-proxy
// in ipvs mode, the nftables mode's tables are deleted and the iptables
// mode's chains are left for --cleanup.
func TestStartCleansOnlyTheNFTablesMode(t *testing.T) {
	host := newTestHost(t)
	host.client = newFakeClient(testObjects())
	leaveEveryMode(t, host)
	host.nft = nftables.NewFake("ip kube-proxy", "ip6 kube-proxy", "inet other-table")
	args := withConfigFile(t, []string{"--config=@config", "--hostname-override=worker-1"}, kubeadmLikeConfig(freePort(t), freePort(t)))
	stop, _ := startCommand(t, host.env(), args)
	waitFor(t, "service in IPVS", func() bool { return strings.Contains(host.ipvs.Dump(), "10.244.1.5:8080") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if left := host.nft.Tables(); !slices.Equal(left, []string{"inet other-table"}) {
		t.Errorf("nftables tables after start: %v, want only the other table", left)
	}
	if d := host.ipt[v1.IPv4Protocol].Dump(); !strings.Contains(d, ":KUBE-SVC-ABC") {
		t.Errorf("the iptables mode's chain was removed at start (upstream leaves it for --cleanup):\n%s", d)
	}
}

// TestCleanupWithoutNFTables: a kernel without nf_tables has nothing of
// that mode to clean; --cleanup does not fail on it (upstream skips it).
func TestCleanupWithoutNFTables(t *testing.T) {
	host := newTestHost(t)
	host.nft.Inject = func(string, string) error { return syscall.EOPNOTSUPP }
	cmd, err := NewCommand(t.Context(), host.env(), newTestGate(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd.SetArgs([]string{"--cleanup"})
	if err := cmd.Execute(); err != nil {
		t.Errorf("--cleanup without nf_tables: %v", err)
	}
}
