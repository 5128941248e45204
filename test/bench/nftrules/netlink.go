package nftrules

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ChainReader reads one chain's DNAT targets over netlink: one rule dump
// of that chain (the kernel filters by chain) and one element dump of the
// anonymous map its DNAT looks up. `nft list chain` costs far more: nft
// fetches a cache that grows with the table (0.8 s at 3000 Services on the
// host, before TCG's slowdown), too coarse to time an update by.
type ChainReader struct {
	conn  *gnft.Conn
	table *gnft.Table
}

// NewChainReader opens a netlink connection for reading upstream's table.
func NewChainReader() (*ChainReader, error) {
	c, err := gnft.New(gnft.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink: %w", err)
	}
	return &ChainReader{conn: c, table: &gnft.Table{Name: Table, Family: gnft.TableFamilyIPv4}}, nil
}

// Targets are chain's DNAT targets, sorted. Only DNATs written in the
// chain itself are read (upstream's shapes without session affinity).
func (r *ChainReader) Targets(chain string) ([]netip.AddrPort, error) {
	return rereadIfVanished(chainRereads, func() ([]netip.AddrPort, error) { return r.targetsOnce(chain) })
}

// chainRereads bounds how often a chain is read again because its map
// vanished between the two reads: each upstream sync that touches the
// chain replaces it, so only a reader racing a stream of syncs retries.
const chainRereads = 5

// rereadIfVanished calls read until it succeeds, fails with anything but
// ENOENT, or has failed attempts times. Upstream's nftables proxier
// rewrites a chain's anonymous DNAT map in every transaction that changes
// the chain, so the map the rule dump names can be deleted before its
// elements are dumped; the chain read again names the new one.
func rereadIfVanished[T any](attempts int, read func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := read()
		if err == nil || !vanished(err) {
			return v, err
		}
		if attempt >= attempts {
			return v, fmt.Errorf("%w (gone in each of %d reads)", err, attempt)
		}
	}
}

// vanished says err is ENOENT. google/nftables formats the netlink error
// of an element dump with %v, which drops the errno from the chain, so its
// text is matched as well.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || strings.HasSuffix(err.Error(), unix.ENOENT.Error())
}

func (r *ChainReader) targetsOnce(chain string) ([]netip.AddrPort, error) {
	rules, err := r.conn.GetRules(r.table, &gnft.Chain{Name: chain, Table: r.table})
	if err != nil {
		return nil, fmt.Errorf("read rules of nftables chain %s: %w", chain, err)
	}
	elements := func(set string) ([]gnft.SetElement, error) {
		els, err := r.conn.GetSetElements(&gnft.Set{Table: r.table, Name: set})
		if err != nil {
			return nil, fmt.Errorf("read elements of set %s of chain %s: %w", set, chain, err)
		}
		return els, nil
	}
	return dnatTargetsOf(rules, elements)
}

// Close closes the netlink connection.
func (r *ChainReader) Close() error { return r.conn.CloseLasting() }

// dnatTargetsOf replays each rule's register writes (immediates, and map
// lookups once per map element) and reads the address and port each dnat
// statement takes from them.
func dnatTargetsOf(rules []*gnft.Rule, elements func(set string) ([]gnft.SetElement, error)) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, rule := range rules {
		var regs registers
		var lookup *expr.Lookup
		for _, e := range rule.Exprs {
			switch x := e.(type) {
			case *expr.Immediate:
				regs.write(x.Register, x.Data)
			case *expr.Lookup:
				if x.IsDestRegSet {
					lookup = x
				}
			case *expr.NAT:
				if x.Type != expr.NATTypeDestNAT {
					continue
				}
				if lookup == nil {
					out = append(out, regs.target(x))
					continue
				}
				els, err := elements(lookup.SetName)
				if err != nil {
					return nil, err
				}
				for _, el := range els {
					r := regs
					r.write(lookup.DestRegister, el.Val)
					out = append(out, r.target(x))
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out), nil
}

// registers are nf_tables' 16 32-bit data registers (NFT_REG_1..4 are
// 128-bit names for the same bytes).
type registers [64]byte

// offset is register r's first byte: NFT_REG32_00 is 8, NFT_REG_1 is 1.
func offset(r uint32) int {
	if r >= 8 {
		return int(r-8) * 4
	}
	return int(r-1) * 16
}

func (g *registers) write(r uint32, data []byte) {
	if o := offset(r); o >= 0 && o < len(g) {
		copy(g[o:], data)
	}
}

// target is the IPv4 address and port a dnat statement reads.
func (g *registers) target(n *expr.NAT) netip.AddrPort {
	a := offset(n.RegAddrMin)
	ip := netip.AddrFrom4([4]byte(g[a : a+4]))
	if n.RegProtoMin == 0 {
		return netip.AddrPortFrom(ip, 0)
	}
	p := offset(n.RegProtoMin)
	return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(g[p:p+2]))
}
