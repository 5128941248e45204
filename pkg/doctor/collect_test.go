package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/sysctl"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/version"
)

// fakeNode is a node's kernel on the fakes plus an API server.
type fakeNode struct {
	ipvs      *ipvs.Fake
	sysctl    *sysctl.Fake
	netdev    *netdev.Fake
	conntrack *conntrack.Fake
	client    *fake.Clientset
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newFakeNode holds Service web (10.96.0.1:80, endpoint 10.244.1.5 ready)
// and Service dns (UDP 10.96.0.10:53, endpoint 10.244.1.5), programmed, plus
// leftovers: real server 10.244.1.6 of web at weight 0 (its pod is gone),
// address 10.96.0.99 bound for no Service, and UDP conntrack entries of dns
// to 10.244.1.9, an endpoint gone and no longer a real server.
func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{ipvs: ipvs.NewFake(), sysctl: sysctl.NewFake(healthySysctls()), netdev: netdev.NewFake(),
		conntrack: conntrack.NewFake()}
	web, dns := vserver("TCP 10.96.0.1:80").Service, vserver("UDP 10.96.0.10:53").Service
	must(t, n.ipvs.AddService(web))
	must(t, n.ipvs.AddService(dns))
	must(t, n.ipvs.AddDestination(web.ServiceKey, dest("10.244.1.5:8080", 1, 0, 0)))
	must(t, n.ipvs.AddDestination(web.ServiceKey, dest("10.244.1.6:8080", 0, 0, 0)))
	must(t, n.ipvs.SetConnections(web.ServiceKey, destKey("10.244.1.6:8080"), 0, 3))
	must(t, n.ipvs.AddDestination(dns.ServiceKey, dest("10.244.1.5:53", 1, 0, 0)))
	must(t, n.netdev.EnsureDummy("kube-ipvs0"))
	for _, a := range addrs("10.96.0.1", "10.96.0.10", "10.96.0.99") {
		must(t, n.netdev.AddAddress("kube-ipvs0", a))
	}
	for _, e := range []conntrack.Entry{
		udpEntry("10.244.2.1:40000", "10.96.0.10:53", "10.244.1.5:53"),
		udpEntry("10.244.2.1:40001", "10.96.0.10:53", "10.244.1.9:53"),
		udpEntry("10.244.2.2:40001", "10.96.0.10:53", "10.244.1.9:53"),
		tcpEntry("10.244.2.1:50000", "10.96.0.1:80", "10.244.1.6:8080"),
		tcpEntry("10.244.2.1:50001", "10.96.0.1:80", "10.244.1.5:8080"),
	} {
		n.conntrack.Add(e)
	}
	dnsSvc := service("dns", "10.96.0.10", func(s *v1.Service) {
		s.Spec.Ports = []v1.ServicePort{{Name: "http", Protocol: v1.ProtocolUDP, Port: 53}}
	})
	dnsSlice := slice("dns", 53, ready("10.244.1.5"))
	*dnsSlice.Ports[0].Protocol = v1.ProtocolUDP
	webSvc, webSlice := service("web", "10.96.0.1"), slice("web", 8080, ready("10.244.1.5"))
	n.client = fake.NewClientset(&webSvc, &dnsSvc, &webSlice, &dnsSlice)
	return n
}

func tcpEntry(client, vip, endpoint string) conntrack.Entry {
	e := udpEntry(client, vip, endpoint)
	e.Protocol = conntrack.ProtoTCP
	return e
}

func (n *fakeNode) sources() Sources {
	return Sources{
		IPVS: n.ipvs, Sysctl: n.sysctl, NetDev: n.netdev, Conntrack: n.conntrack, Client: n.client,
		ListUDPConntrack: func() ([]conntrack.Entry, error) {
			var udp []conntrack.Entry
			for _, e := range n.conntrack.Entries() {
				if e.Protocol == conntrack.ProtoUDP {
					udp = append(udp, e)
				}
			}
			return udp, nil
		},
		KernelRelease: func() (string, error) { return "6.1.0-56-amd64", nil },
		DummyDevice:   "kube-ipvs0",
	}
}

func TestCollect(t *testing.T) {
	n := newFakeNode(t)
	snap := Collect(context.Background(), n.sources())
	if len(snap.Gaps) > 0 {
		t.Fatalf("gaps: %v", snap.Gaps)
	}
	wantText(t, "virtual servers", ipvs.FormatVirtualServers(snap.VirtualServers), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.5:8080 weight=1 active=0 inactive=0
		  -> 10.244.1.6:8080 weight=0 active=0 inactive=3
		UDP 10.96.0.10:53 rr flags=0x2 timeout=0
		  -> 10.244.1.5:53 weight=1 active=0 inactive=0`)
	if !snap.DummyPresent || !reflect.DeepEqual(snap.DummyAddresses, addrs("10.96.0.1", "10.96.0.10", "10.96.0.99", "fe80::ff:fe00:1")) {
		t.Errorf("dummy: present %v, addresses %v", snap.DummyPresent, snap.DummyAddresses)
	}
	if !reflect.DeepEqual(snap.Sysctls, healthySysctls()) || snap.KernelRelease != "6.1.0-56-amd64" {
		t.Errorf("kernel %q, sysctls %v", snap.KernelRelease, snap.Sysctls)
	}
	if len(snap.UDPConntrack) != 3 {
		t.Errorf("UDP conntrack: %v", snap.UDPConntrack)
	}
	if c := snap.Cluster; c == nil || len(c.Services) != 2 || len(c.EndpointSlices) != 2 {
		t.Errorf("cluster: %+v", c)
	}
}

func TestCollectRecordsGaps(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*fakeNode, *Sources)
		gap   string
	}{
		{"sysctl missing", func(n *fakeNode, _ *Sources) { n.sysctl = sysctl.NewFake(withoutSysctl(SysctlExpireNodestConn)) },
			"sysctl net/ipv4/vs/expire_nodest_conn: read sysctl net/ipv4/vs/expire_nodest_conn: no such file or directory"},
		{"uname fails", func(_ *fakeNode, s *Sources) {
			s.KernelRelease = func() (string, error) { return "", syscall.EFAULT }
		}, "kernel release: bad address"},
		{"conntrack dump refused", func(_ *fakeNode, s *Sources) {
			s.ListUDPConntrack = func() ([]conntrack.Entry, error) { return nil, syscall.EPERM }
		}, "UDP conntrack entries: operation not permitted"},
		{"API server refuses", func(n *fakeNode, _ *Sources) {
			n.client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, errors.New("forbidden")
			})
		}, "cluster: list EndpointSlices: forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t)
			src := n.sources()
			tc.fault(n, &src)
			src.Sysctl = n.sysctl
			snap := Collect(context.Background(), src)
			if !reflect.DeepEqual(snap.Gaps, []string{tc.gap}) {
				t.Errorf("gaps = %q, want %q", snap.Gaps, tc.gap)
			}
			if len(snap.VirtualServers) != 2 {
				t.Errorf("the rest must still be read: %d virtual servers", len(snap.VirtualServers))
			}
		})
	}
}

func TestCollectWithoutDummyOrCluster(t *testing.T) {
	n := newFakeNode(t)
	must(t, n.netdev.DeleteDummy("kube-ipvs0"))
	src := n.sources()
	src.Client = nil
	snap := Collect(context.Background(), src)
	if len(snap.Gaps) > 0 || snap.DummyPresent || snap.DummyAddresses != nil || snap.Cluster != nil {
		t.Errorf("gaps %v, dummy present %v %v, cluster %v", snap.Gaps, snap.DummyPresent, snap.DummyAddresses, snap.Cluster)
	}
}

// TestCollectDiagnoseFix runs the whole doctor on the fakes and checks the
// kernel's end state.
func TestCollectDiagnoseFix(t *testing.T) {
	n := newFakeNode(t)
	report := Diagnose(Collect(context.Background(), n.sources()), Options{})
	wantText(t, "findings", findingLines(report.Findings), `
		problem address-without-service 10.96.0.99 on kube-ipvs0
		problem stale-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=0/3 fix
		problem stale-udp-conntrack UDP 10.96.0.10:53 -> 10.244.1.9:53 [ns/dns:http] fix`)
	Fix(&report, n.ipvs, n.conntrack)
	wantText(t, "fixed", fixLines(report.Fixed), `
		TCP 10.96.0.1:80 -> 10.244.1.6:8080: deleted real server TCP 10.96.0.1:80 -> 10.244.1.6:8080; deleted 1 conntrack entries
		UDP 10.96.0.10:53 -> 10.244.1.9:53: deleted 2 conntrack entries`)
	wantText(t, "IPVS after fix", n.ipvs.Dump(), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.5:8080 weight=1 active=0 inactive=0
		UDP 10.96.0.10:53 rr flags=0x2 timeout=0
		  -> 10.244.1.5:53 weight=1 active=0 inactive=0`)
	wantText(t, "conntrack after fix", n.conntrack.Dump(), `
		tcp 10.244.2.1:50001 -> 10.96.0.1:80 reply from 10.244.1.5:8080
		udp 10.244.2.1:40000 -> 10.96.0.10:53 reply from 10.244.1.5:53`)
	if got := report.Unfixed(); got != 1 { // the address is reported, not fixed
		t.Errorf("unfixed = %d, want 1", got)
	}
	again := Diagnose(Collect(context.Background(), n.sources()), Options{})
	wantText(t, "findings after fix", findingLines(again.Findings), `problem address-without-service 10.96.0.99 on kube-ipvs0`)
}

func fixLines(results []FixResult) string {
	var b strings.Builder
	for _, r := range results {
		b.WriteString(r.Object + ": " + strings.Join(r.Done, "; "))
		if r.Error != "" {
			b.WriteString(" ERROR " + r.Error)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestFixFailures(t *testing.T) {
	n := newFakeNode(t)
	report := Diagnose(Collect(context.Background(), n.sources()), Options{})
	// Someone deleted the real server meanwhile; the conntrack table refuses.
	must(t, n.ipvs.DeleteDestination(serviceKey("TCP 10.96.0.1:80"), destKey("10.244.1.6:8080")))
	n.conntrack.Inject = func(op, object string) error {
		if strings.Contains(object, "udp") {
			return syscall.EPERM
		}
		return nil
	}
	Fix(&report, n.ipvs, n.conntrack)
	wantText(t, "fixed", fixLines(report.Fixed), `
		TCP 10.96.0.1:80 -> 10.244.1.6:8080: real server already gone; deleted 1 conntrack entries
		UDP 10.96.0.10:53 -> 10.244.1.9:53:  ERROR delete conntrack entries (0 deleted): operation not permitted`)
	if got := report.Unfixed(); got != 2 {
		t.Errorf("unfixed = %d, want 2 (address, conntrack)", got)
	}

	// A failed real-server deletion keeps its conntrack entries.
	n = newFakeNode(t)
	report = Diagnose(Collect(context.Background(), n.sources()), Options{})
	n.ipvs.Inject = func(op, object string) error { return syscall.EBUSY }
	Fix(&report, n.ipvs, n.conntrack)
	if !strings.Contains(fixLines(report.Fixed), ": device or resource busy") ||
		!strings.Contains(n.conntrack.Dump(), "reply from 10.244.1.6:8080") {
		t.Errorf("fixed:\n%s\nconntrack:\n%s", fixLines(report.Fixed), n.conntrack.Dump())
	}
}

func TestRunExitCodesAndOutput(t *testing.T) {
	tests := []struct {
		name     string
		opts     CommandOptions
		change   func(*fakeNode, *Sources)
		wantCode int
		wantOut  []string
	}{
		{"problems found", CommandOptions{Output: "table"}, nil, ExitProblems,
			[]string{"Source-port reuse risk: LOW", "stale-real-server", "0/3", "3 problems, 0 warnings."}},
		{"fix leaves the address", CommandOptions{Output: "table", Fix: true}, nil, ExitProblems,
			[]string{"Fixed:", "deleted real server TCP 10.96.0.1:80 -> 10.244.1.6:8080"}},
		{"fix repairs everything", CommandOptions{Output: "table", Fix: true}, func(n *fakeNode, _ *Sources) {
			must(t, n.netdev.DeleteAddress("kube-ipvs0", netip.MustParseAddr("10.96.0.99")))
		}, ExitOK, []string{"deleted 2 conntrack entries"}},
		{"healthy", CommandOptions{Output: "table"}, func(n *fakeNode, s *Sources) {
			n.ipvs = ipvs.NewFake()
			must(t, n.netdev.DeleteDummy("kube-ipvs0"))
			s.IPVS, s.Client = n.ipvs, nil
		}, ExitOK, []string{"No findings.", "kube-ipvs0: missing", "Cluster: not asked", "0 problems, 0 warnings."}},
		{"high risk alone is a problem", CommandOptions{Output: "table"}, func(n *fakeNode, s *Sources) {
			n.ipvs = ipvs.NewFake()
			must(t, n.netdev.DeleteDummy("kube-ipvs0"))
			s.IPVS, s.Client = n.ipvs, nil
			must(t, n.sysctl.Set(SysctlExpireNodestConn, 0))
		}, ExitProblems, []string{"Source-port reuse risk: HIGH", "sysctl -w net.ipv4.vs.expire_nodest_conn=1"}},
		{"could not inspect", CommandOptions{Output: "table"}, func(_ *fakeNode, s *Sources) {
			s.ListUDPConntrack = func() ([]conntrack.Entry, error) { return nil, syscall.EPERM }
		}, ExitCannotInspect, []string{"Could not inspect:", "UDP conntrack entries: operation not permitted", "stale-real-server"}},
		{"json", CommandOptions{Output: "json"}, nil, ExitProblems, []string{`"kind": "stale-real-server"`, `"level": "low"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t)
			src := n.sources()
			if tc.change != nil {
				tc.change(n, &src)
			}
			var out, errOut bytes.Buffer
			code := Run(context.Background(), tc.opts, src, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tc.wantCode, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if errOut.Len() > 0 {
				t.Errorf("stderr: %s", errOut.String())
			}
		})
	}
}

func TestJSONReportDecodes(t *testing.T) {
	n := newFakeNode(t)
	var out bytes.Buffer
	Run(context.Background(), CommandOptions{Output: "json", Fix: true}, n.sources(), &out, &bytes.Buffer{})
	var r Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if len(r.Findings) != 3 || len(r.Fixed) != 2 || r.Findings[1].Repair.DeleteRealServer.Destination != destKey("10.244.1.6:8080") {
		t.Errorf("decoded report: %+v", r)
	}
}

func TestParseFlags(t *testing.T) {
	good := []struct {
		args []string
		want CommandOptions
	}{
		{nil, CommandOptions{Output: "table", DummyDevice: "kube-ipvs0", ConfigzURL: DefaultConfigzURL}},
		{[]string{"-o", "json", "--fix", "--kubeconfig=/k", "--exclude-cidrs=172.16.1.1/12,fd00::/8", "--configz-url="},
			CommandOptions{Output: "json", Fix: true, Kubeconfig: "/k", DummyDevice: "kube-ipvs0",
				ExcludeCIDRs: mustPrefixes("172.16.0.0/12", "fd00::/8")}},
		{[]string{"--in-cluster", "--dummy-device", "ipvs0", "--configz-url", "http://10.0.0.1:10249/configz"},
			CommandOptions{Output: "table", InCluster: true, DummyDevice: "ipvs0", ConfigzURL: "http://10.0.0.1:10249/configz"}},
	}
	for _, tc := range good {
		got, err := ParseFlags(tc.args, &bytes.Buffer{})
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFlags(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, args := range [][]string{{"-o", "yaml"}, {"--exclude-cidrs", "10.0.0.1"}, {"extra"},
		{"--in-cluster", "--kubeconfig", "/k"}, {"--nope"}} {
		if _, err := ParseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("ParseFlags(%q) accepted", args)
		}
	}
	if code := Main([]string{"-o", "yaml"}, &bytes.Buffer{}, &bytes.Buffer{}); code != ExitUsage {
		t.Errorf("Main with a bad flag: exit %d, want %d", code, ExitUsage)
	}
}

// TestVersionFlag: --version prints the build without inspecting the node (it needs
// no root and no IPVS).
func TestVersionFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"--version"}, &stdout, &stderr)
	if want := "ipvs-doctor " + version.Get().String() + "\n"; code != ExitOK || stdout.String() != want || stderr.Len() > 0 {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want 0 and %q", code, stdout.String(), stderr.String(), want)
	}
}
