// Package nftrules reads which endpoints upstream's nftables proxier has
// programmed, from nft's JSON listing of its table (`nft -j list table ip
// kube-proxy`, or `nft -j list chain ...` for one chain): the benchmark's
// "rules in place" and "endpoint gone" for the nftables side.
//
// Upstream (v1.37) sends a ClusterIP through the map service-ips (ClusterIP
// . protocol . port : goto <service chain>); the service chain DNATs either
// straight to the endpoints (`dnat ip addr . port to numgen random mod N
// map { 0 : IP . port, ... }`, or `dnat to IP:port` for one endpoint) or,
// with session affinity, through per-endpoint chains it jumps to. Both
// shapes are read here: a chain's endpoints are the DNAT targets in it and
// in the service chains it jumps or goes to.
package nftrules

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Table and ServiceIPsMap are where upstream's IPv4 rules live.
const (
	Family        = "ip"
	Table         = "kube-proxy"
	ServiceIPsMap = "service-ips"
)

// ServiceKey is a ClusterIP service port as service-ips keys it.
type ServiceKey struct {
	Addr     netip.Addr
	Protocol string // "tcp", "udp", "sctp"
	Port     uint16
}

// Ruleset is what a listing says about services and endpoints.
type Ruleset struct {
	// services maps each service-ips key to the chain it goes to.
	services map[ServiceKey]string
	// dnat holds each chain's DNAT targets, in rule order.
	dnat map[string][]netip.AddrPort
	// jumps holds the chains each chain jumps or goes to.
	jumps map[string][]string
}

// Parse reads nft's JSON output ({"nftables": [{"table": ...}, {"map": ...},
// {"chain": ...}, {"rule": ...}, ...]}).
func Parse(b []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode nft JSON: %w", err)
	}
	rs := &Ruleset{services: map[ServiceKey]string{}, dnat: map[string][]netip.AddrPort{}, jumps: map[string][]string{}}
	for _, obj := range doc.Nftables {
		if raw, ok := obj["rule"]; ok {
			if err := rs.addRule(raw); err != nil {
				return nil, err
			}
		}
		if raw, ok := obj["map"]; ok {
			if err := rs.addMap(raw); err != nil {
				return nil, err
			}
		}
	}
	return rs, nil
}

// addRule records a rule's DNAT targets and jumps under its chain.
func (rs *Ruleset) addRule(raw json.RawMessage) error {
	var rule struct {
		Chain string `json:"chain"`
		Expr  []any  `json:"expr"`
	}
	if err := json.Unmarshal(raw, &rule); err != nil {
		return fmt.Errorf("decode nft rule: %w", err)
	}
	var err error
	walk(rule.Expr, func(key string, val any) {
		switch key {
		case "dnat":
			eps, derr := dnatTargets(val)
			if derr != nil && err == nil {
				err = derr
			}
			rs.dnat[rule.Chain] = append(rs.dnat[rule.Chain], eps...)
		case "jump", "goto":
			if target, ok := field[string](val, "target"); ok {
				rs.jumps[rule.Chain] = append(rs.jumps[rule.Chain], target)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("rule in chain %s: %w", rule.Chain, err)
	}
	return nil
}

// addMap records service-ips's elements; other maps are not needed.
func (rs *Ruleset) addMap(raw json.RawMessage) error {
	var m struct {
		Name string  `json:"name"`
		Elem [][]any `json:"elem"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode nft map: %w", err)
	}
	if m.Name != ServiceIPsMap {
		return nil
	}
	for _, e := range m.Elem {
		if len(e) != 2 {
			return fmt.Errorf("map %s: element %v is not [key, verdict]", m.Name, e)
		}
		key, err := serviceKey(e[0])
		if err != nil {
			return fmt.Errorf("map %s: %w", m.Name, err)
		}
		verdict, _ := e[1].(map[string]any)
		for _, kind := range []string{"goto", "jump"} {
			if target, ok := field[string](verdict[kind], "target"); ok {
				rs.services[key] = target
			}
		}
	}
	return nil
}

// serviceKey reads {"concat": ["10.96.1.0", "tcp", 80]}, or the same inside
// {"elem": {"val": ...}} when the element carries a comment or counter.
func serviceKey(v any) (ServiceKey, error) {
	if elem, ok := field[map[string]any](v, "elem"); ok {
		v = elem["val"]
	}
	parts, _ := field[[]any](v, "concat")
	if len(parts) != 3 {
		return ServiceKey{}, fmt.Errorf("key %v is not address . protocol . port", v)
	}
	addr, aok := parts[0].(string)
	proto, pok := parts[1].(string)
	port, nok := parts[2].(float64)
	ip, err := netip.ParseAddr(addr)
	if !aok || !pok || !nok || err != nil {
		return ServiceKey{}, fmt.Errorf("key %v is not address . protocol . port", v)
	}
	return ServiceKey{Addr: ip, Protocol: proto, Port: uint16(port)}, nil
}

// dnatTargets reads a dnat statement: {"addr": "IP", "port": N}, or
// {"addr": {"map": {"key": ..., "data": {"set": [[0, {"concat": ["IP", N]}], ...]}}}}.
func dnatTargets(v any) ([]netip.AddrPort, error) {
	d, _ := v.(map[string]any)
	if addr, ok := d["addr"].(string); ok {
		port, _ := d["port"].(float64)
		ep, err := addrPort(addr, port)
		return []netip.AddrPort{ep}, err
	}
	m, _ := field[map[string]any](d["addr"], "map")
	set, ok := field[[]any](m["data"], "set")
	if !ok {
		return nil, fmt.Errorf("dnat %v: neither an address nor an inline map", v)
	}
	out := make([]netip.AddrPort, 0, len(set))
	for _, e := range set {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			return nil, fmt.Errorf("dnat map element %v is not [index, target]", e)
		}
		parts, _ := field[[]any](pair[1], "concat")
		if len(parts) != 2 {
			return nil, fmt.Errorf("dnat map target %v is not address . port", pair[1])
		}
		addr, _ := parts[0].(string)
		port, _ := parts[1].(float64)
		ep, err := addrPort(addr, port)
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

func addrPort(addr string, port float64) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dnat target %q: %w", addr, err)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// field returns v[key] when v is a JSON object holding a T there.
func field[T any](v any, key string) (T, bool) {
	m, _ := v.(map[string]any)
	t, ok := m[key].(T)
	return t, ok
}

// walk calls visit for every key of every object inside v, depth first.
func walk(v any, visit func(key string, val any)) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			visit(k, val)
			walk(val, visit)
		}
	case []any:
		for _, val := range t {
			walk(val, visit)
		}
	}
}

// Chain is the chain service-ips sends key to.
func (rs *Ruleset) Chain(key ServiceKey) (string, bool) {
	c, ok := rs.services[key]
	return c, ok
}

// Services lists the keys of service-ips.
func (rs *Ruleset) Services() []ServiceKey {
	out := make([]ServiceKey, 0, len(rs.services))
	for k := range rs.services {
		out = append(out, k)
	}
	return out
}

// Endpoints are the DNAT targets reachable from chain: its own and those
// of the service and endpoint chains it jumps or goes to (upstream's
// per-Service chain names hold a "/"; its fixed chains, such as
// mark-for-masquerade, do not and DNAT nowhere), sorted.
func (rs *Ruleset) Endpoints(chain string) []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[string]bool{}
	var visit func(string)
	visit = func(c string) {
		if seen[c] {
			return
		}
		seen[c] = true
		out = append(out, rs.dnat[c]...)
		for _, next := range rs.jumps[c] {
			if strings.Contains(next, "/") {
				visit(next)
			}
		}
	}
	visit(chain)
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

// ServiceEndpoints are the endpoints of a service-ips key (none when the
// key is not in the map).
func (rs *Ruleset) ServiceEndpoints(key ServiceKey) []netip.AddrPort {
	c, ok := rs.services[key]
	if !ok {
		return nil
	}
	return rs.Endpoints(c)
}
