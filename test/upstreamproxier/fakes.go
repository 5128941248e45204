package upstreamproxier

import (
	"bytes"
	"sync"
	"time"

	utilsysctl "k8s.io/component-helpers/node/util/sysctl"
	utilipset "k8s.io/kubernetes/pkg/proxy/ipvs/ipset"
	ipsettest "k8s.io/kubernetes/pkg/proxy/ipvs/ipset/testing"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
)

// IPSet is upstream's fake ipset, serialized, every call counted as
// "ipset.<Method>". Read Fake only while no proxier syncs.
type IPSet struct {
	mu    sync.Mutex
	Fake  *ipsettest.FakeIPSet
	calls *Calls
}

var _ utilipset.Interface = (*IPSet)(nil)

func (s *IPSet) enter(method string) {
	s.calls.add("ipset." + method)
	s.mu.Lock()
}

func (s *IPSet) FlushSet(set string) error {
	s.enter("FlushSet")
	defer s.mu.Unlock()
	return s.Fake.FlushSet(set)
}

func (s *IPSet) DestroySet(set string) error {
	s.enter("DestroySet")
	defer s.mu.Unlock()
	return s.Fake.DestroySet(set)
}

func (s *IPSet) DestroyAllSets() error {
	s.enter("DestroyAllSets")
	defer s.mu.Unlock()
	return s.Fake.DestroyAllSets()
}

func (s *IPSet) CreateSet(set *utilipset.IPSet, ignoreExistErr bool) error {
	s.enter("CreateSet")
	defer s.mu.Unlock()
	return s.Fake.CreateSet(set, ignoreExistErr)
}

func (s *IPSet) AddEntry(entry string, set *utilipset.IPSet, ignoreExistErr bool) error {
	s.enter("AddEntry")
	defer s.mu.Unlock()
	return s.Fake.AddEntry(entry, set, ignoreExistErr)
}

func (s *IPSet) DelEntry(entry string, set string) error {
	s.enter("DelEntry")
	defer s.mu.Unlock()
	return s.Fake.DelEntry(entry, set)
}

func (s *IPSet) TestEntry(entry string, set string) (bool, error) {
	s.enter("TestEntry")
	defer s.mu.Unlock()
	return s.Fake.TestEntry(entry, set)
}

func (s *IPSet) ListEntries(set string) ([]string, error) {
	s.enter("ListEntries")
	defer s.mu.Unlock()
	return s.Fake.ListEntries(set)
}

func (s *IPSet) ListSets() ([]string, error) {
	s.enter("ListSets")
	defer s.mu.Unlock()
	return s.Fake.ListSets()
}

func (s *IPSet) GetVersion() (string, error) {
	s.enter("GetVersion")
	defer s.mu.Unlock()
	return s.Fake.GetVersion()
}

// IPTables counts the calls of one proxier's iptables fake as
// "iptables.<Method>".
type IPTables struct {
	utiliptables.Interface
	calls *Calls
}

func (t *IPTables) count(method string) { t.calls.add("iptables." + method) }

func (t *IPTables) EnsureChain(table utiliptables.Table, chain utiliptables.Chain) (bool, error) {
	t.count("EnsureChain")
	return t.Interface.EnsureChain(table, chain)
}

func (t *IPTables) FlushChain(table utiliptables.Table, chain utiliptables.Chain) error {
	t.count("FlushChain")
	return t.Interface.FlushChain(table, chain)
}

func (t *IPTables) DeleteChain(table utiliptables.Table, chain utiliptables.Chain) error {
	t.count("DeleteChain")
	return t.Interface.DeleteChain(table, chain)
}

func (t *IPTables) ChainExists(table utiliptables.Table, chain utiliptables.Chain) (bool, error) {
	t.count("ChainExists")
	return t.Interface.ChainExists(table, chain)
}

func (t *IPTables) EnsureRule(pos utiliptables.RulePosition, table utiliptables.Table, chain utiliptables.Chain, args ...string) (bool, error) {
	t.count("EnsureRule")
	return t.Interface.EnsureRule(pos, table, chain, args...)
}

func (t *IPTables) DeleteRule(table utiliptables.Table, chain utiliptables.Chain, args ...string) error {
	t.count("DeleteRule")
	return t.Interface.DeleteRule(table, chain, args...)
}

func (t *IPTables) SaveInto(table utiliptables.Table, buffer *bytes.Buffer) error {
	t.count("SaveInto")
	return t.Interface.SaveInto(table, buffer)
}

func (t *IPTables) Restore(table utiliptables.Table, data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	t.count("Restore")
	return t.Interface.Restore(table, data, flush, counters)
}

func (t *IPTables) RestoreAll(data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	t.count("RestoreAll")
	return t.Interface.RestoreAll(data, flush, counters)
}

func (t *IPTables) Monitor(canary utiliptables.Chain, tables []utiliptables.Table, reload func(), interval time.Duration, stop <-chan struct{}) {
	t.count("Monitor")
	t.Interface.Monitor(canary, tables, reload, interval, stop)
}

func (t *IPTables) Present() error {
	t.count("Present")
	return t.Interface.Present()
}

// Sysctl is upstream's fake sysctl, serialized, every call counted as
// "sysctl.<Method>".
type Sysctl struct {
	mu    sync.Mutex
	fake  utilsysctl.Interface
	calls *Calls
}

var _ utilsysctl.Interface = (*Sysctl)(nil)

func (s *Sysctl) GetSysctl(name string) (int, error) {
	s.calls.add("sysctl.GetSysctl")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fake.GetSysctl(name)
}

func (s *Sysctl) SetSysctl(name string, value int) error {
	s.calls.add("sysctl.SetSysctl")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fake.SetSysctl(name, value)
}
