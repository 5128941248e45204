package ipvs

import "github.com/ipvs-proxy/ipvs-proxy/pkg/iptables"

// What upstream kube-proxy v1.37's iptables mode writes, by name, for
// --cleanup (upstream's --cleanup removes every mode's rules, whichever
// mode it is configured with). Some names are also ours (KUBE-SERVICES,
// KUBE-POSTROUTING, KUBE-MARK-MASQ, KUBE-FORWARD, KUBE-PROXY-FIREWALL).

// modeJump is a rule in a built-in chain of another mode: match arguments,
// then the comment, then the jump.
type modeJump struct {
	table, from, to, comment string
	match                    []string
}

var ctstateNew = []string{"-m", "conntrack", "--ctstate", "NEW"}

var iptablesModeJumps = []modeJump{
	{iptables.TableFilter, "INPUT", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", ctstateNew},
	{iptables.TableFilter, "FORWARD", "KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals", ctstateNew},
	{iptables.TableFilter, "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports", nil},
	{iptables.TableFilter, "FORWARD", "KUBE-SERVICES", "kubernetes service portals", ctstateNew},
	{iptables.TableFilter, "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", ctstateNew},
	{iptables.TableFilter, "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules", nil},
	{iptables.TableFilter, "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", ctstateNew},
	{iptables.TableFilter, "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", ctstateNew},
	{iptables.TableFilter, "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall", ctstateNew},
	{iptables.TableNAT, "OUTPUT", "KUBE-SERVICES", "kubernetes service portals", nil},
	{iptables.TableNAT, "PREROUTING", "KUBE-SERVICES", "kubernetes service portals", nil},
	{iptables.TableNAT, "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules", nil},
}

var (
	iptablesModeNATChains    = []string{"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-PROXY-CANARY"}
	iptablesModeFilterChains = []string{"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-PROXY-CANARY"}
	// Per-Service chains (cluster, local, endpoint, firewall, external).
	iptablesModeServiceChainPrefixes = []string{"KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-FW-", "KUBE-EXT-"}
)
