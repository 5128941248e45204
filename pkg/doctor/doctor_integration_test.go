//go:build integration

package doctor

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/conntrack"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/test/nettest"
)

// insertConntrack creates a real conntrack entry with the conntrack binary,
// its reply coming from the endpoint as after IPVS's DNAT.
func insertConntrack(t *testing.T, e conntrack.Entry) {
	t.Helper()
	proto := map[uint8]string{conntrack.ProtoTCP: "tcp", conntrack.ProtoUDP: "udp"}[e.Protocol]
	args := []string{"-I", "-p", proto, "-s", e.OrigSrc.String(), "-d", e.OrigDst.String(),
		"--sport", strconv.Itoa(int(e.OrigSrcPort)), "--dport", strconv.Itoa(int(e.OrigDstPort)),
		"-r", e.ReplySrc.String(), "-q", e.OrigSrc.String(),
		"--reply-port-src", strconv.Itoa(int(e.ReplySrcPort)), "--reply-port-dst", strconv.Itoa(int(e.OrigSrcPort)),
		"-t", "300"}
	if e.Protocol == conntrack.ProtoTCP {
		args = append(args, "--state", "ESTABLISHED", "-u", "SEEN_REPLY")
	}
	if out, err := exec.Command("conntrack", args...).CombinedOutput(); err != nil {
		t.Fatalf("conntrack %v: %v: %s", args, err, out)
	}
}

// buildStaleState programs by hand, in the current namespace, what
// newFakeNode holds: Services web and dns programmed, a weight-0 real
// server whose pod is gone, an address for no Service, stale UDP entries.
// It returns the node's sources, with the cluster of newFakeNode.
func buildStaleState(t *testing.T) Sources {
	t.Helper()
	src, err := NodeSources("kube-ipvs0")
	must(t, err)
	web, dns := vserver("TCP 10.96.0.1:80").Service, vserver("UDP 10.96.0.10:53").Service
	must(t, src.IPVS.AddService(web))
	must(t, src.IPVS.AddService(dns))
	must(t, src.IPVS.AddDestination(web.ServiceKey, dest("10.244.1.5:8080", 1, 0, 0)))
	must(t, src.IPVS.AddDestination(web.ServiceKey, dest("10.244.1.6:8080", 0, 0, 0)))
	must(t, src.IPVS.AddDestination(dns.ServiceKey, dest("10.244.1.5:53", 1, 0, 0)))
	must(t, src.NetDev.EnsureDummy("kube-ipvs0"))
	for _, a := range addrs("10.96.0.1", "10.96.0.10", "10.96.0.99") {
		must(t, src.NetDev.AddAddress("kube-ipvs0", a))
	}
	for _, e := range []conntrack.Entry{
		udpEntry("10.244.2.1:40000", "10.96.0.10:53", "10.244.1.5:53"),
		udpEntry("10.244.2.1:40001", "10.96.0.10:53", "10.244.1.9:53"),
		udpEntry("10.244.2.2:40001", "10.96.0.10:53", "10.244.1.9:53"),
		tcpEntry("10.244.2.1:50000", "10.96.0.1:80", "10.244.1.6:8080"),
		tcpEntry("10.244.2.1:50001", "10.96.0.1:80", "10.244.1.5:8080"),
	} {
		insertConntrack(t, e)
	}
	// A fresh namespace has expire_nodest_conn=0: the risk is high.
	must(t, src.Sysctl.Set(SysctlVSConntrack, 1))
	src.Client = newFakeNode(t).client
	return src
}

// enterNode moves the test into a fresh namespace with lo up, like a node:
// without a local routing table the kernel refuses IPv4 real servers.
func enterNode(t *testing.T) {
	t.Helper()
	nettest.EnterNewNetns(t)
	nettest.LinkUp(t, "lo")
}

func TestKernelCollectDiagnoseFix(t *testing.T) {
	enterNode(t)
	src := buildStaleState(t)
	defer func() { _ = src.IPVS.Flush() }()

	snap := Collect(context.Background(), src)
	if len(snap.Gaps) > 0 {
		t.Fatalf("gaps: %v", snap.Gaps)
	}
	if kernelVersion(snap.KernelRelease) == kernelUnknown || len(snap.UDPConntrack) != 3 || !snap.DummyPresent {
		t.Errorf("kernel %q, %d UDP entries, dummy %v", snap.KernelRelease, len(snap.UDPConntrack), snap.DummyPresent)
	}
	report := Diagnose(snap, Options{})
	wantText(t, "findings", findingLines(report.Findings), `
		problem address-without-service 10.96.0.99 on kube-ipvs0
		problem stale-real-server TCP 10.96.0.1:80 -> 10.244.1.6:8080 [ns/web:http] conns=0/0 fix
		problem stale-udp-conntrack UDP 10.96.0.10:53 -> 10.244.1.9:53 [ns/dns:http] fix`)
	if report.Risk.Level != RiskHigh || !strings.Contains(allReasons(report.Risk), "expire_nodest_conn=0") {
		t.Errorf("risk: %+v", report.Risk)
	}

	Fix(&report, src.IPVS, src.Conntrack)
	wantText(t, "fixed", fixLines(report.Fixed), `
		TCP 10.96.0.1:80 -> 10.244.1.6:8080: deleted real server TCP 10.96.0.1:80 -> 10.244.1.6:8080; deleted 1 conntrack entries
		UDP 10.96.0.10:53 -> 10.244.1.9:53: deleted 2 conntrack entries`)
	vss, err := src.IPVS.List()
	must(t, err)
	wantText(t, "IPVS after fix", ipvs.FormatVirtualServers(vss), `
		TCP 10.96.0.1:80 rr flags=0x2 timeout=0
		  -> 10.244.1.5:8080 weight=1 active=0 inactive=0
		UDP 10.96.0.10:53 rr flags=0x2 timeout=0
		  -> 10.244.1.5:53 weight=1 active=0 inactive=0`)
	if out, err := exec.Command("conntrack", "-L").CombinedOutput(); err != nil ||
		strings.Contains(string(out), "10.244.1.9") || strings.Contains(string(out), "10.244.1.6") {
		t.Errorf("conntrack -L after fix (%v):\n%s", err, out)
	}

	again := Diagnose(Collect(context.Background(), src), Options{})
	wantText(t, "findings after fix", findingLines(again.Findings), `problem address-without-service 10.96.0.99 on kube-ipvs0`)
}

// TestKernelRun runs the command's core against the kernel: exit codes and
// the report before and after --fix, and once with the proxier's sysctls.
func TestKernelRun(t *testing.T) {
	enterNode(t)
	src := buildStaleState(t)
	defer func() { _ = src.IPVS.Flush() }()
	var out bytes.Buffer
	if code := Run(context.Background(), CommandOptions{Output: "table"}, src, &out, &out); code != ExitProblems {
		t.Errorf("exit %d, want %d:\n%s", code, ExitProblems, out.String())
	}
	t.Logf("report:\n%s", out.String())

	must(t, src.Sysctl.Set(SysctlExpireNodestConn, 1))
	must(t, src.NetDev.DeleteAddress("kube-ipvs0", addrs("10.96.0.99")[0]))
	out.Reset()
	if code := Run(context.Background(), CommandOptions{Output: "json", Fix: true}, src, &out, &out); code != ExitOK {
		t.Errorf("--fix: exit %d, want %d:\n%s", code, ExitOK, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), CommandOptions{Output: "table"}, src, &out, &out); code != ExitOK {
		t.Errorf("after --fix: exit %d, want %d:\n%s", code, ExitOK, out.String())
	}
	t.Logf("report after --fix:\n%s", out.String())
}

// TestKernelDummyMissing: no kube-ipvs0 is a finding, not a failure.
func TestKernelDummyMissing(t *testing.T) {
	enterNode(t)
	src, err := NodeSources("kube-ipvs0")
	must(t, err)
	src.Client = fake.NewClientset(func() *v1.Service { s := service("web", "10.96.0.1"); return &s }())
	snap := Collect(context.Background(), src)
	if len(snap.Gaps) > 0 || snap.DummyPresent {
		t.Fatalf("gaps %v, dummy present %v", snap.Gaps, snap.DummyPresent)
	}
	wantText(t, "findings", findingLines(Diagnose(snap, Options{}).Findings), `
		problem service-address-not-bound kube-ipvs0
		problem service-missing-from-ipvs TCP 10.96.0.1:80 [ns/web:http]`)
}
