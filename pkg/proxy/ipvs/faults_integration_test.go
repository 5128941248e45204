//go:build integration

package ipvs

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"

	"github.com/vishvananda/netns"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/netdev"
)

// faultPlan fails one chosen kernel write, once, and counts the writes the
// wrappers below pass to the real kernel.
type faultPlan struct {
	mu     sync.Mutex
	op     string // method name, e.g. "AddDestination"
	object string // readable object, e.g. "TCP 10.96.0.10:80 -> 10.244.0.11:8080"
	hit    bool
	writes int
}

func (f *faultPlan) arm(op, object string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op, f.object, f.hit = op, object, false
}

// do runs write unless it is the armed fault, which fails with EIO and
// changes nothing, like a kernel call that was refused.
func (f *faultPlan) do(op, object string, write func() error) error {
	f.mu.Lock()
	fail := !f.hit && op == f.op && object == f.object
	f.hit = f.hit || fail
	if !fail {
		f.writes++
	}
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("injected fault: %s %s: %w", op, object, syscall.EIO)
	}
	return write()
}

func (f *faultPlan) resetWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = 0
}

func (f *faultPlan) counts() (hit bool, writes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit, f.writes
}

// faultyIPVS passes every call to the real IPVS table, through the plan for writes.
type faultyIPVS struct {
	ipvs.Interface
	f *faultPlan
}

func (w faultyIPVS) AddService(s ipvs.Service) error {
	return w.f.do("AddService", s.ServiceKey.String(), func() error { return w.Interface.AddService(s) })
}

func (w faultyIPVS) UpdateService(s ipvs.Service) error {
	return w.f.do("UpdateService", s.ServiceKey.String(), func() error { return w.Interface.UpdateService(s) })
}

func (w faultyIPVS) DeleteService(k ipvs.ServiceKey) error {
	return w.f.do("DeleteService", k.String(), func() error { return w.Interface.DeleteService(k) })
}

func (w faultyIPVS) AddDestination(k ipvs.ServiceKey, d ipvs.Destination) error {
	return w.f.do("AddDestination", k.String()+" -> "+d.DestinationKey.String(), func() error { return w.Interface.AddDestination(k, d) })
}

func (w faultyIPVS) UpdateDestination(k ipvs.ServiceKey, d ipvs.Destination) error {
	return w.f.do("UpdateDestination", k.String()+" -> "+d.DestinationKey.String(), func() error { return w.Interface.UpdateDestination(k, d) })
}

func (w faultyIPVS) DeleteDestination(k ipvs.ServiceKey, d ipvs.DestinationKey) error {
	return w.f.do("DeleteDestination", k.String()+" -> "+d.String(), func() error { return w.Interface.DeleteDestination(k, d) })
}

// faultyIPSet passes every call to the real ipsets, through the plan for writes.
type faultyIPSet struct {
	ipset.Interface
	f *faultPlan
}

func (w faultyIPSet) CreateSet(s ipset.Set) error {
	return w.f.do("CreateSet", s.Name, func() error { return w.Interface.CreateSet(s) })
}

func (w faultyIPSet) DestroySet(name string) error {
	return w.f.do("DestroySet", name, func() error { return w.Interface.DestroySet(name) })
}

func (w faultyIPSet) AddEntry(set string, e ipset.Entry) error {
	return w.f.do("AddEntry", set+" "+e.String(), func() error { return w.Interface.AddEntry(set, e) })
}

func (w faultyIPSet) DeleteEntry(set string, e ipset.Entry) error {
	return w.f.do("DeleteEntry", set+" "+e.String(), func() error { return w.Interface.DeleteEntry(set, e) })
}

// faultyNetDev passes every call to the real links, through the plan for
// address writes (EnsureDummy, called on every full sync, usually writes
// nothing and is not counted).
type faultyNetDev struct {
	netdev.Interface
	f *faultPlan
}

func (w faultyNetDev) AddAddress(name string, a netip.Addr) error {
	return w.f.do("AddAddress", name+" "+a.String(), func() error { return w.Interface.AddAddress(name, a) })
}

func (w faultyNetDev) DeleteAddress(name string, a netip.Addr) error {
	return w.f.do("DeleteAddress", name+" "+a.String(), func() error { return w.Interface.DeleteAddress(name, a) })
}

// faultClusterIPs are the ClusterIPs of the fault scenario's services.
func faultClusterIPs() map[string]string {
	return map[string]string{"a": "10.96.0.10", "b": "10.96.0.11", "c": "10.96.0.12"}
}

// faultPodIPs are the addresses of the fault scenario's pods.
func faultPodIPs() map[string]string {
	return map[string]string{"pod-a1": "10.244.0.10", "pod-a2": "10.244.0.11", "pod-b1": "10.244.0.20",
		"pod-b2": "10.244.0.21", "pod-c1": "10.244.0.30"}
}

// convergedAnswers are the pods each service answers from once converged.
func convergedAnswers() map[string][]string {
	return map[string][]string{"a": {"pod-a1", "pod-a2"}, "b": {"pod-b1", "pod-b2"}, "c": {"pod-c1"}}
}

// faultNode is a node whose proxier writes to the real kernel through the
// fault plan: services a{pod-a1} and b{pod-b1} programmed, then changed to
// a{pod-a1,pod-a2}, b{pod-b1,pod-b2} and a new c{pod-c1}, an apply that
// adds real servers, set entries, an address and a virtual server.
type faultNode struct {
	*node
	p     *Proxier
	fault *faultPlan
	a, b  *discovery.EndpointSlice
}

func newFaultNode(t *testing.T) *faultNode {
	n := newNode(t)
	pods, vips := faultPodIPs(), faultClusterIPs()
	for _, name := range slices.Sorted(maps.Keys(pods)) {
		n.addPod(name, pods[name])
	}
	f := &faultNode{node: n, fault: &faultPlan{}}
	n.deps.IPVS = faultyIPVS{Interface: n.deps.IPVS, f: f.fault}
	n.deps.IPSet = faultyIPSet{Interface: n.deps.IPSet, f: f.fault}
	n.deps.NetDev = faultyNetDev{Interface: n.deps.NetDev, f: f.fault}
	f.p = newRealProxier(t, n, testConfig(v1.IPv4Protocol))
	f.a = slice("a", discovery.AddressTypeIPv4, localEP(pods["pod-a1"]))
	f.b = slice("b", discovery.AddressTypeIPv4, localEP(pods["pod-b1"]))
	f.p.OnServiceAdd(svc("a", vips["a"]))
	f.p.OnServiceAdd(svc("b", vips["b"]))
	f.p.OnEndpointSliceAdd(f.a)
	f.p.OnEndpointSliceAdd(f.b)
	syncOK(t, f.p)
	f.expectAnswers("before the change", map[string][]string{"a": {"pod-a1"}, "b": {"pod-b1"}})
	return f
}

func (f *faultNode) change() {
	pods := faultPodIPs()
	a2, b2 := f.a.DeepCopy(), f.b.DeepCopy()
	a2.Endpoints = append(a2.Endpoints, slice("a", discovery.AddressTypeIPv4, localEP(pods["pod-a2"])).Endpoints...)
	b2.Endpoints = append(b2.Endpoints, slice("b", discovery.AddressTypeIPv4, localEP(pods["pod-b2"])).Endpoints...)
	f.p.OnEndpointSliceUpdate(f.a, a2)
	f.p.OnEndpointSliceUpdate(f.b, b2)
	f.p.OnServiceAdd(svc("c", faultClusterIPs()["c"]))
	f.p.OnEndpointSliceAdd(slice("c", discovery.AddressTypeIPv4, localEP(pods["pod-c1"])))
}

// expectAnswers sends requests from the client host to each service's
// ClusterIP: every answer must come from one of its listed pods and each
// listed pod must answer; a service listed with no pods must answer none.
func (f *faultNode) expectAnswers(when string, want map[string][]string) {
	t := f.t
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		pods := want[name]
		count := 2 * max(len(pods), 1) // rr: each pod twice
		got := f.answers(f.client, "http://"+faultClusterIPs()[name]+":80", count)
		t.Logf("%s: service %s answered %v", when, name, got)
		for answer := range got {
			refused := len(pods) == 0 && strings.HasPrefix(answer, "error: ")
			if !slices.Contains(pods, answer) && !refused {
				t.Errorf("%s: service %s answered %q, want only %v", when, name, answer, pods)
			}
		}
		for _, pod := range pods {
			if got[pod] == 0 {
				t.Errorf("%s: %s never answered through service %s: %v", when, pod, name, got)
			}
		}
	}
}

// loadResult counts the requests a background client made while fn ran.
type loadResult struct {
	when   string
	ok     int
	failed []string
	took   time.Duration // fn's run time
}

// duringLoad runs fn while a client, from its own namespace, sends
// requests one after another to url, and counts those a pod answered.
func (f *faultNode) duringLoad(when, url string, fn func()) loadResult {
	stop, done := make(chan struct{}), make(chan loadResult)
	go func() {
		// This goroutine's thread stays in the client's namespace; Go
		// discards the thread when the goroutine ends still locked.
		runtime.LockOSThread()
		r := loadResult{when: when}
		if err := netns.Set(f.client.NS); err != nil {
			r.failed = append(r.failed, "enter client netns: "+err.Error())
			done <- r
			return
		}
		for {
			if answer, err := f.get(nil, url); err == nil && strings.HasPrefix(answer, "pod-") {
				r.ok++
			} else {
				r.failed = append(r.failed, fmt.Sprintf("%q %v", answer, err))
			}
			select {
			case <-stop:
				done <- r
				return
			default:
			}
		}
	}()
	start := time.Now()
	fn()
	took := time.Since(start)
	close(stop)
	r := <-done
	r.took = took
	return r
}

// expectConverged checks the kernel, read with ipvsadm and the real
// interfaces, against the desired state, then checks that a full sync,
// which re-reads everything, finds nothing left to write.
func (f *faultNode) expectConverged() {
	t := f.t
	t.Helper()
	var want []string
	vips, pods, answers := faultClusterIPs(), faultPodIPs(), convergedAnswers()
	for _, svcName := range slices.Sorted(maps.Keys(vips)) {
		vip := vips[svcName] + ":80"
		want = append(want, "-A -t "+vip+" -s rr")
		for _, pod := range answers[svcName] {
			want = append(want, "-a -t "+vip+" -r "+pods[pod]+":8080 -m -w 1")
		}
	}
	slices.Sort(want)
	if got := ipvsadmSave(t); !slices.Equal(got, want) {
		t.Errorf("IPVS table after convergence:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f.expectBoundAndInSet()
	f.fault.resetWrites()
	passSyncPeriod(f.p)
	syncOK(t, f.p)
	if _, writes := f.fault.counts(); writes != 0 {
		t.Errorf("a full sync after convergence still made %d IPVS/ipset/address writes", writes)
	}
}

// ipvsadmSave lists the IPVS table as sorted `ipvsadm -Sn` lines.
func ipvsadmSave(t *testing.T) []string {
	out, err := exec.Command("ipvsadm", "-Sn").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Sn: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	slices.Sort(lines)
	return lines
}

// expectBoundAndInSet checks that every ClusterIP is bound on kube-ipvs0
// and a member of KUBE-CLUSTER-IP, and nothing else is.
func (f *faultNode) expectBoundAndInSet() {
	t := f.t
	t.Helper()
	var wantAddrs, wantEntries []string
	for _, ip := range faultClusterIPs() {
		wantAddrs = append(wantAddrs, ip)
		wantEntries = append(wantEntries, ip+",tcp:80")
	}
	slices.Sort(wantAddrs)
	slices.Sort(wantEntries)
	addrs, err := netdev.New().Addresses(DummyDevice)
	must(t, err)
	var gotAddrs []string
	for _, a := range addrs {
		if !a.IsLinkLocalUnicast() { // the kernel's own IPv6 link-local address
			gotAddrs = append(gotAddrs, a.String())
		}
	}
	slices.Sort(gotAddrs)
	if !slices.Equal(gotAddrs, wantAddrs) {
		t.Errorf("%s addresses %v, want %v", DummyDevice, gotAddrs, wantAddrs)
	}
	if got := setEntries(t, setClusterIP); !slices.Equal(got, wantEntries) {
		t.Errorf("%s entries %v, want %v", setClusterIP, got, wantEntries)
	}
}

func setEntries(t *testing.T, name string) []string {
	sets, err := ipset.New().List(func(n string) bool { return n == name })
	must(t, err)
	var entries []string
	for _, s := range sets {
		if s.Name != name {
			continue
		}
		for _, e := range s.Entries {
			entries = append(entries, e.String())
		}
	}
	slices.Sort(entries)
	return entries
}

// TestKernelFaultMidApplyKeepsTrafficAndConverges fails one kernel write
// of each kind (an IPVS real server, an ipset entry, an address on
// kube-ipvs0) in the middle of an apply that changes two services and
// adds a third, on the real kernel. The sync must report the fault; with
// the fault in place, what the failed write did not touch must keep
// answering real HTTP from a client host (and b, touched by no fault, is
// under load through both syncs); the next sync must bring the kernel to
// exactly the desired state, with every new endpoint answering.
func TestKernelFaultMidApplyKeepsTrafficAndConverges(t *testing.T) {
	converged := convergedAnswers()
	for _, tc := range []struct {
		op, object string
		// during: the pods each service answers from while the fault is in place.
		during map[string][]string
	}{
		// a keeps its old real server, b and c get theirs.
		{"AddDestination", "TCP 10.96.0.10:80 -> 10.244.0.11:8080", map[string][]string{"a": {"pod-a1"}, "b": converged["b"], "c": converged["c"]}},
		// c's port is missing from the set: KUBE-IPVS-FILTER rejects it.
		{"AddEntry", setClusterIP + " 10.96.0.12,tcp:80", map[string][]string{"a": converged["a"], "b": converged["b"], "c": nil}},
		// c's address is not local: its packets are not IPVS's to take.
		{"AddAddress", DummyDevice + " 10.96.0.12", map[string][]string{"a": converged["a"], "b": converged["b"], "c": nil}},
	} {
		t.Run(tc.op, func(t *testing.T) {
			start := time.Now()
			f := newFaultNode(t)
			f.change()
			f.fault.arm(tc.op, tc.object)
			f.failingSync(tc.op, tc.object, tc.during)
			f.repairingSync()
			t.Logf("%s case took %v", tc.op, time.Since(start).Round(time.Millisecond))
		})
	}
}

// failingSync runs the sync that hits the armed fault, under load on b,
// and checks the error and what answers while the fault is in place.
func (f *faultNode) failingSync(op, object string, during map[string][]string) {
	t := f.t
	t.Helper()
	var err error
	f.expectLoadServed(f.duringLoad("the failing sync", f.bURL(), func() { err = f.p.syncProxyRules() }))
	if hit, _ := f.fault.counts(); !hit {
		t.Fatalf("the sync never called %s %s: the scenario does not cover it", op, object)
	}
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), object) {
		t.Fatalf("sync with a failing %s %s returned %v, want the injected EIO", op, object, err)
	}
	t.Logf("failed %s %s: sync returned: %v", op, object, err)
	f.expectAnswers("while faulted", during)
}

// repairingSync runs the next sync, under load on b, and checks that the
// kernel converged and every service answers from all its pods.
func (f *faultNode) repairingSync() {
	t := f.t
	t.Helper()
	var err error
	f.expectLoadServed(f.duringLoad("the repairing sync", f.bURL(), func() { err = f.p.syncProxyRules() }))
	if err != nil {
		t.Fatalf("the sync after the fault did not succeed: %v", err)
	}
	f.expectConverged()
	f.expectAnswers("after the next sync", convergedAnswers())
}

// bURL is service b's, which no fault of the table touches.
func (f *faultNode) bURL() string { return "http://" + faultClusterIPs()["b"] + ":80" }

func (f *faultNode) expectLoadServed(r loadResult) {
	t := f.t
	t.Helper()
	t.Logf("load on b during %s (%v): %d answered, %d failed", r.when, r.took.Round(time.Millisecond), r.ok, len(r.failed))
	if len(r.failed) > 0 || r.ok == 0 {
		t.Errorf("load on b during %s: %d answered, failures %v", r.when, r.ok, r.failed)
	}
}
