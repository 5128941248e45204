package ipvs

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/ipset"
	"github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"
)

// Our chains; names are upstream's so --cleanup of either proxier finds them.
const (
	chainServices      = "KUBE-SERVICES"
	chainPostrouting   = "KUBE-POSTROUTING"
	chainNodePort      = "KUBE-NODE-PORT"
	chainLoadBalancer  = "KUBE-LOAD-BALANCER"
	chainMarkMasq      = "KUBE-MARK-MASQ"
	chainForward       = "KUBE-FORWARD"
	chainFirewall      = "KUBE-PROXY-FIREWALL"
	chainSourceRanges  = "KUBE-SOURCE-RANGES-FIREWALL"
	chainIPVSFilter    = "KUBE-IPVS-FILTER"
	chainIPVSOutFilter = "KUBE-IPVS-OUT-FILTER"
)

// natChains and filterChains are the chains we own, per table.
var (
	natChains    = []string{chainServices, chainPostrouting, chainNodePort, chainLoadBalancer, chainMarkMasq}
	filterChains = []string{chainForward, chainNodePort, chainFirewall, chainSourceRanges, chainIPVSFilter, chainIPVSOutFilter}
)

// jumpRule is a rule in a built-in chain that sends packets to one of ours.
type jumpRule struct {
	table, from, to, comment string
}

func jumpRules() []jumpRule {
	return []jumpRule{
		{iptables.TableNAT, "OUTPUT", chainServices, "kubernetes service portals"},
		{iptables.TableNAT, "PREROUTING", chainServices, "kubernetes service portals"},
		{iptables.TableNAT, "POSTROUTING", chainPostrouting, "kubernetes postrouting rules"},
		{iptables.TableFilter, "FORWARD", chainForward, "kubernetes forwarding rules"},
		{iptables.TableFilter, "INPUT", chainNodePort, "kubernetes health check rules"},
		{iptables.TableFilter, "INPUT", chainFirewall, "kube-proxy firewall rules"},
		{iptables.TableFilter, "FORWARD", chainFirewall, "kube-proxy firewall rules"},
		{iptables.TableFilter, "INPUT", chainIPVSFilter, "kubernetes ipvs access filter"},
		{iptables.TableFilter, "OUTPUT", chainIPVSOutFilter, "kubernetes ipvs access filter"},
	}
}

// setJump is a rule "if the packet matches set, jump to target".
type setJump struct {
	set, table, from, to, match, proto string
}

// setJumps are written only while their set has members. Local sets come
// before their non-local twins so RETURN wins. Callers only read it: it is
// one table, not a new list each call (every sync builds the rules).
func setJumps() []setJump { return ownSetJumps[:] }

var ownSetJumps = [...]setJump{
	{setLoopBack, iptables.TableNAT, chainPostrouting, "MASQUERADE", "dst,dst,src", ""},
	{setLoadBalancer, iptables.TableNAT, chainServices, chainLoadBalancer, "dst,dst", ""},
	{setLoadBalancerLoc, iptables.TableNAT, chainLoadBalancer, "RETURN", "dst,dst", ""},
	{setNodePortLocalTCP, iptables.TableNAT, chainNodePort, "RETURN", "dst", "tcp"},
	{setNodePortTCP, iptables.TableNAT, chainNodePort, chainMarkMasq, "dst", "tcp"},
	{setNodePortLocalUDP, iptables.TableNAT, chainNodePort, "RETURN", "dst", "udp"},
	{setNodePortUDP, iptables.TableNAT, chainNodePort, chainMarkMasq, "dst", "udp"},
	{setNodePortLocSCTP, iptables.TableNAT, chainNodePort, "RETURN", "dst,dst", "sctp"},
	{setNodePortSCTP, iptables.TableNAT, chainNodePort, chainMarkMasq, "dst,dst", "sctp"},
	{setLoadBalancerFW, iptables.TableFilter, chainFirewall, chainSourceRanges, "dst,dst", ""},
	{setLBSourceCIDR, iptables.TableFilter, chainSourceRanges, "RETURN", "dst,dst,src", ""},
	{setLBSourceIP, iptables.TableFilter, chainSourceRanges, "RETURN", "dst,dst,src", ""},
}

// ruleWriter builds one table's iptables-restore payload.
type ruleWriter struct {
	chains []string
	rules  bytes.Buffer
}

func (w *ruleWriter) add(args ...string) {
	for i, a := range args {
		if i > 0 {
			w.rules.WriteByte(' ')
		}
		if strings.ContainsAny(a, " \t") {
			a = strconv.Quote(a)
		}
		w.rules.WriteString(a)
	}
	w.rules.WriteByte('\n')
}

// payload is the table's chains (declared, so restore flushes them) and rules.
func (w *ruleWriter) payload() []byte {
	var out bytes.Buffer
	for _, c := range w.chains {
		fmt.Fprintf(&out, ":%s - [0:0]\n", c)
	}
	out.Write(w.rules.Bytes())
	return out.Bytes()
}

// ruleBuilder renders the rules as a pure function of the desired state.
type ruleBuilder struct {
	d      *desiredState
	cfg    *Config
	nat    ruleWriter
	filter ruleWriter
	mark   string
}

// buildRules renders the nat and filter payloads for a desired state.
func buildRules(d *desiredState, cfg *Config) (nat, filter []byte) {
	b := &ruleBuilder{d: d, cfg: cfg, mark: fmt.Sprintf("%#08x", 1<<uint(cfg.MasqueradeBit))}
	b.nat.chains, b.filter.chains = natChains, filterChains
	b.servicesRules()
	b.filterRules()
	b.postroutingRules()
	return b.nat.payload(), b.filter.payload()
}

func (b *ruleBuilder) name(set string) string { return setName(set, b.cfg.IPFamily) }
func (b *ruleBuilder) has(set string) bool    { return b.d.setSize(set) > 0 }

func (b *ruleBuilder) comment(set string) string {
	for _, def := range setDefinitions() {
		if def.name == set {
			return def.comment
		}
	}
	return set
}

func (b *ruleBuilder) servicesRules() {
	lo := "127.0.0.0/8"
	if b.cfg.IPFamily == v1.IPv6Protocol {
		lo = "::1/128"
	}
	b.nat.add("-A", chainServices, "-s", lo, "-j", "RETURN")
	for _, j := range setJumps() {
		if !b.has(j.set) {
			continue
		}
		args := []string{"-A", j.from}
		if j.proto != "" {
			args = append(args, "-p", j.proto)
		}
		args = append(args, "-m", "comment", "--comment", b.comment(j.set), "-m", "set", "--match-set", b.name(j.set), j.match, "-j", j.to)
		if j.table == iptables.TableNAT {
			b.nat.add(args...)
		} else {
			b.filter.add(args...)
		}
	}
	b.clusterIPMasquerade()
	b.externalIPRules()
	b.nat.add("-A", chainServices, "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePort)
	b.nat.add("-A", chainLoadBalancer, "-j", chainMarkMasq)
	for _, set := range []string{setClusterIP, setLoadBalancer} {
		if b.has(set) {
			b.nat.add("-A", chainServices, "-m", "set", "--match-set", b.name(set), "dst,dst", "-j", "ACCEPT")
		}
	}
}

// clusterIPMasquerade marks for SNAT the service traffic that would
// otherwise come back asymmetrically.
func (b *ruleBuilder) clusterIPMasquerade() {
	if !b.has(setClusterIP) {
		return
	}
	args := []string{"-A", chainServices, "-m", "comment", "--comment", b.comment(setClusterIP), "-m", "set", "--match-set", b.name(setClusterIP)}
	switch {
	case b.cfg.MasqueradeAll:
		b.nat.add(append(args, "dst,dst", "-j", chainMarkMasq)...)
	case b.cfg.LocalDetector != nil && b.cfg.LocalDetector.IsImplemented():
		args = append(args, "dst,dst")
		args = append(args, b.cfg.LocalDetector.IfNotLocal()...)
		b.nat.add(append(args, "-j", chainMarkMasq)...)
	default:
		// Node-originated traffic picks a VIP as source; masquerade it.
		b.nat.add(append(args, "src,dst", "-j", chainMarkMasq)...)
	}
}

func (b *ruleBuilder) externalIPRules() {
	for _, set := range []string{setExternalIP, setExternalIPLocal} {
		if !b.has(set) {
			continue
		}
		args := []string{"-A", chainServices, "-m", "comment", "--comment", b.comment(set), "-m", "set", "--match-set", b.name(set), "dst,dst"}
		if set == setExternalIP {
			b.nat.add(append(args, "-j", chainMarkMasq)...)
		}
		// Accept off-node traffic (not from a bridge, not from a local
		// process) and traffic to external IPs that are local addresses.
		b.nat.add(append(args, "-m", "physdev", "!", "--physdev-is-in", "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")...)
		b.nat.add(append(args, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")...)
	}
}

func (b *ruleBuilder) filterRules() {
	b.filter.add("-A", chainSourceRanges, "-j", "DROP")
	entries := make([]ipset.Entry, 0, len(b.d.lbNoNodeAccess))
	for e := range b.d.lbNoNodeAccess {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entryLess(entries[i], entries[j]) })
	for _, e := range entries {
		ip := e.IP.String()
		b.filter.add("-A", chainIPVSOutFilter, "-s", ip, "-m", "ipvs", "--vaddr", ip, "--vproto", e.Protocol, "--vport", strconv.Itoa(int(e.Port)), "-j", "DROP")
	}
	mark := b.mark + "/" + b.mark
	b.filter.add("-A", chainForward, "-m", "comment", "--comment", "kubernetes forwarding rules", "-m", "mark", "--mark", mark, "-j", "ACCEPT")
	b.filter.add("-A", chainForward, "-m", "comment", "--comment", "kubernetes forwarding conntrack rule", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	b.filter.add("-A", chainNodePort, "-m", "comment", "--comment", b.comment(setHealthCheckPort), "-m", "set", "--match-set", b.name(setHealthCheckPort), "dst", "-j", "ACCEPT")
	// Traffic to a service address on a port no service uses is rejected
	// instead of reaching the node's own sockets.
	for _, set := range []string{setLoadBalancer, setClusterIP, setExternalIP, setExternalIPLocal} {
		b.filter.add("-A", chainIPVSFilter, "-m", "set", "--match-set", b.name(set), "dst,dst", "-j", "RETURN")
	}
	b.filter.add("-A", chainIPVSFilter, "-m", "set", "--match-set", b.name(setHealthCheckPort), "dst", "-j", "RETURN")
	b.filter.add("-A", chainIPVSFilter, "-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", b.name(setIPVSAddresses), "dst", "-j", "REJECT")
}

func (b *ruleBuilder) postroutingRules() {
	mark := b.mark + "/" + b.mark
	b.nat.add("-A", chainPostrouting, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	// Clear the mark so a packet that loops through the stack is not masqueraded twice.
	b.nat.add("-A", chainPostrouting, "-j", "MARK", "--xor-mark", b.mark)
	b.nat.add("-A", chainPostrouting, "-m", "comment", "--comment", "kubernetes service traffic requiring SNAT", "-j", "MASQUERADE", "--random-fully")
	b.nat.add("-A", chainMarkMasq, "-j", "MARK", "--or-mark", b.mark)
}

// A full sync used to rewrite both tables and check every jump (eleven
// iptables processes per family each syncPeriod: most of an idle node's
// CPU). It now reads each table once and writes only when our part of it
// differs from what the same read showed right after our last write.

// ourRules is our part of an iptables-save of one table: our chains'
// declarations (without counters) and rules, and every rule jumping to
// one of them (the jumps from the built-in chains).
func ourRules(saved []byte, chains []string) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(saved) {
		f := strings.Fields(string(line))
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":") && slices.Contains(chains, f[0][1:]):
			out.WriteString(f[0] + "\n")
		case len(f) > 1 && f[0] == "-A" && (slices.Contains(chains, f[1]) || slices.Contains(chains, jumpTarget(f))):
			out.Write(line)
		}
	}
	return out.Bytes()
}

// jumpTarget is the chain a rule's words jump to ("" when none).
func jumpTarget(words []string) string {
	i := slices.Index(words, "-j")
	if i < 0 || i+1 >= len(words) {
		return ""
	}
	return words[i+1]
}

func tableChains(table string) []string {
	if table == iptables.TableNAT {
		return natChains
	}
	return filterChains
}

// rulesIntact says whether our part of table is still as our last write
// left it (one iptables-save); false when unknown or unreadable.
func (p *Proxier) rulesIntact(table string) bool {
	want, ok := p.savedRules[table]
	return ok && p.ourPartIs(table, want)
}

// ourPartIs reads table (one iptables-save) and says whether our part of it
// is want; false, logged, when it differs or cannot be read. It touches no
// sync state, so the background audit calls it without the lock.
func (p *Proxier) ourPartIs(table string, want []byte) bool {
	ours, err := p.readOurPart(table)
	if err != nil {
		p.logger.V(2).Info("Cannot read iptables; rewriting our chains", "table", table, "err", err)
		return false
	}
	intact := bytes.Equal(ours, want)
	if !intact {
		p.logger.Info("Our iptables chains or the jumps to them changed; rewriting them", "table", table)
	}
	return intact
}

// rememberRules records our part of the tables a full sync wrote, right
// after it wrote them and ensured the jumps, if the read shows the payload
// and every jump (a change made in between would otherwise be recorded as
// ours); a table it did not write keeps its record (read again, it would
// record as ours whatever someone else changed in it since). After a
// failure nothing is recorded and the next full sync writes again.
func (p *Proxier) rememberRules(written []string, checked bool) {
	clear(p.audit.toRecord)
	p.rulesGen++
	if !checked {
		clear(p.savedRules)
		return
	}
	read := p.readOurParts(written)
	for _, table := range written {
		delete(p.savedRules, table)
		rules, ok := read[table]
		if !ok {
			continue
		}
		if !p.holdsOurWrite(table, rules) || !hasOurJumps(rules, table) {
			p.logger.Info("Our iptables chains or the jumps to them changed since our write; the next full sync rewrites them", "table", table)
			continue
		}
		p.savedRules[table] = rules
	}
}

// hasOurJumps says whether our part of a table has every jump to our
// chains that ensureJumps writes.
func hasOurJumps(ours []byte, table string) bool {
	have := map[[2]string]bool{}
	for line := range bytes.Lines(jumpsIn(ours, table)) {
		f := strings.Fields(string(line))
		have[[2]string{f[1], jumpTarget(f)}] = true
	}
	for _, j := range jumpRules() {
		if j.table == table && !have[[2]string{j.from, j.to}] {
			return false
		}
	}
	return true
}

// ruleAudit is the periodic check that our iptables chains are still as our
// last full sync left them, run by SyncLoop's proxier away from the sync
// lock: iptables-save is a process to start (seconds in a starved VM), and
// a removed endpoint must not wait behind it. What it finds is rewritten by
// the full sync it asks for. Proxiers driven by hand (tests, benchmarks)
// check inline in their full syncs instead (tableChanged).
type ruleAudit struct {
	running atomic.Bool
	// changed are the tables found changed since the rules were recorded
	// (guarded by Proxier.mu).
	changed map[string]bool
	// toRecord are the tables a partial sync rewrote, each with the jumps
	// to our chains its last record had; recording says a goroutine is
	// reading them back (both guarded by Proxier.mu).
	toRecord  map[string][]byte
	recording bool
}

// tableChanged says whether our part of table must be written although the
// payload is the one last written: the audit found it changed, or a full
// sync finds it unrecorded (the last write was not checked) or, driven by
// hand, changed (one iptables-save).
func (p *Proxier) tableChanged(table string, full bool) bool {
	if p.audit.changed[table] {
		return true
	}
	if !full {
		return false
	}
	if _, recorded := p.savedRules[table]; !recorded {
		return true
	}
	return !p.looping.Load() && !p.rulesIntact(table)
}

// startRuleAudit checks, in the background, the tables the last full sync
// recorded; at most one audit runs at a time. Called with p.mu held.
func (p *Proxier) startRuleAudit() {
	if !p.looping.Load() || len(p.savedRules) == 0 || !p.audit.running.CompareAndSwap(false, true) {
		return
	}
	go p.auditRules(maps.Clone(p.savedRules))
}

// auditRules reads each recorded table without the sync lock and, if our
// part changed since, has the next sync (a full one) rewrite it. A table
// whose record was replaced during the read (a write, read back since) is
// read again against its new record: what the read showed may be our write
// or a change made after it. One whose record was dropped is rewritten, or
// checked by its read-back, anyway.
func (p *Proxier) auditRules(want map[string][]byte) {
	defer p.audit.running.Store(false)
	for len(want) > 0 {
		var changed []string
		for table, rules := range want {
			if !p.ourPartIs(table, rules) {
				changed = append(changed, table)
			}
		}
		again := map[string][]byte{}
		found := false
		p.mu.Lock()
		for _, table := range changed {
			if rules, recorded := p.savedRules[table]; recorded && sameRecord(rules, want[table]) {
				p.audit.changed[table] = true
				found = true
			} else if recorded {
				again[table] = rules
			}
		}
		if found {
			p.needFull = true
		}
		p.mu.Unlock()
		if found {
			p.requestSync()
		}
		want = again
	}
}

// sameRecord says whether a and b are the same record, not merely equal
// ones: a table written and read back into equal bytes was still written
// during the audit's read.
func sameRecord(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// A partial sync rewrites our chains without checking the jumps to them.
// Left unrecorded, its tables made the next full sync rewrite both and
// re-check every jump under the sync lock (seconds in a starved VM, with
// a removed endpoint waiting behind them), so a looping proxier reads the
// written tables back in the background instead, and records them if the
// jumps are still those of the last record.

// recordPartialWrite is called, with p.mu held, after a partial sync wrote
// tables: their records are stale, the other table's stays.
func (p *Proxier) recordPartialWrite(tables []string, ok bool) {
	if !ok || !p.looping.Load() {
		p.rememberRules(nil, false)
		return
	}
	p.rulesGen++
	for _, table := range tables {
		if rules, recorded := p.savedRules[table]; recorded {
			p.audit.toRecord[table] = jumpsIn(rules, table)
		}
		delete(p.savedRules, table) // an unrecorded toRecord entry keeps its jumps
	}
	if len(p.audit.toRecord) > 0 && !p.audit.recording {
		p.audit.recording = true
		go p.recordInBackground()
	}
}

// recordInBackground reads back the tables to record until no write
// happened during a read (a write during one makes it stale: read again).
func (p *Proxier) recordInBackground() {
	for {
		p.mu.Lock()
		if len(p.audit.toRecord) == 0 {
			p.audit.recording = false
			p.mu.Unlock()
			return
		}
		want, gen := maps.Clone(p.audit.toRecord), p.rulesGen
		p.mu.Unlock()
		read := p.readOurParts(slices.Collect(maps.Keys(want)))
		p.mu.Lock()
		if gen == p.rulesGen {
			for table, jumps := range want {
				p.recordIfJumpsAre(table, read[table], jumps)
			}
		}
		p.mu.Unlock()
	}
}

// readOurParts reads our part of each table; an unreadable one is left out.
func (p *Proxier) readOurParts(tables []string) map[string][]byte {
	out := make(map[string][]byte, len(tables))
	for _, table := range tables {
		ours, err := p.readOurPart(table)
		if err != nil {
			p.logger.V(2).Info("Cannot read iptables back; the next full sync rewrites our chains", "table", table, "err", err)
			continue
		}
		out[table] = ours
	}
	return out
}

// readOurPart is our part of table (ourRules) as one iptables-save shows it.
func (p *Proxier) readOurPart(table string) ([]byte, error) {
	saved, err := p.deps.IPTables.Save(table)
	if err != nil {
		return nil, err
	}
	return ourRules(saved, tableChains(table)), nil
}

// recordIfJumpsAre records rules as table's if its jumps to our chains are
// still jumps and its chains still hold the rules last written (compared by
// chainShape: iptables-save prints matches its own way); otherwise (changed,
// or not read) the table stays unrecorded and the next full sync rewrites
// it and re-ensures them. Called with p.mu held, no write since the read.
func (p *Proxier) recordIfJumpsAre(table string, rules, jumps []byte) {
	delete(p.audit.toRecord, table)
	if rules == nil {
		return
	}
	if !bytes.Equal(jumpsIn(rules, table), jumps) {
		p.logger.Info("The jumps to our iptables chains changed; the next full sync rewrites them", "table", table)
		return
	}
	if !p.holdsOurWrite(table, rules) {
		p.logger.Info("Our iptables chains changed since our write; the next full sync rewrites them", "table", table)
		return
	}
	p.savedRules[table] = rules
}

// holdsOurWrite says whether our part of table, as read, holds the payload
// last written to it (compared by chainShape).
func (p *Proxier) holdsOurWrite(table string, ours []byte) bool {
	written := p.lastFilter
	if table == iptables.TableNAT {
		written = p.lastNAT
	}
	return chainShape(ours, table) == chainShape(written, table)
}

// chainShape is what iptables-save keeps, whatever way it prints a rule's
// matches, of our chains in a restore payload or in our part of a save:
// each chain, whether it exists, and its rules' targets in order.
func chainShape(lines []byte, table string) string {
	chains := tableChains(table)
	declared := map[string]bool{}
	targets := map[string][]string{}
	for line := range bytes.Lines(lines) {
		f := strings.Fields(string(line))
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], ":"):
			declared[f[0][1:]] = true
		case len(f) > 1 && f[0] == "-A" && slices.Contains(chains, f[1]):
			targets[f[1]] = append(targets[f[1]], jumpTarget(f))
		}
	}
	var out strings.Builder
	for _, c := range chains {
		fmt.Fprintf(&out, "%s %v %s\n", c, declared[c], strings.Join(targets[c], " "))
	}
	return out.String()
}

// jumpsIn are the lines of our part of a table that are not in our chains:
// the jumps to them from the built-in chains.
func jumpsIn(ours []byte, table string) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(ours) {
		f := strings.Fields(string(line))
		if len(f) > 1 && f[0] == "-A" && !slices.Contains(tableChains(table), f[1]) {
			out.Write(line)
		}
	}
	return out.Bytes()
}
