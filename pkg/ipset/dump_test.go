package ipset

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"unsafe" // and go:linkname

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/ipvs-proxy/ipvs-proxy/pkg/netlinkbatch"
)

// The tests build the kernel's replies by hand, as ip_set_core.c and the
// types' list functions write them.

const listType = nl.IPSET_CMD_LIST | unix.NFNL_SUBSYS_IPSET<<8

func nlAttr(typ uint16, val []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofNlAttr+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func nlNest(typ uint16, children ...[]byte) []byte {
	return nlAttr(typ|nl.NLA_F_NESTED, slices.Concat(children...))
}

func nlString(typ uint16, s string) []byte { return nlAttr(typ, append([]byte(s), 0)) }
func nlU8(typ uint16, v uint8) []byte      { return nlAttr(typ, []byte{v}) }
func nlNet16(typ uint16, v uint16) []byte {
	return nlAttr(typ|nl.NLA_F_NET_BYTEORDER, binary.BigEndian.AppendUint16(nil, v))
}
func nlNet32(typ uint16, v uint32) []byte {
	return nlAttr(typ|nl.NLA_F_NET_BYTEORDER, binary.BigEndian.AppendUint32(nil, v))
}

// nlMsg is one netlink message.
func nlMsg(seq uint32, typ, flags uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 1234) // our port id
	return append(b, payload...)
}

// listMsg is one IPSET_CMD_LIST message of a dump with these attributes.
func listMsg(seq uint32, attrs ...[]byte) []byte {
	payload := append([]byte{unix.AF_INET, nl.NFNETLINK_V0, 0, 0}, nlU8(nl.IPSET_ATTR_PROTOCOL, nl.IPSET_PROTOCOL)...)
	return nlMsg(seq, listType, unix.NLM_F_MULTI, append(payload, slices.Concat(attrs...)...))
}

func doneMsg(seq uint32, errno int32) []byte {
	return nlMsg(seq, unix.NLMSG_DONE, unix.NLM_F_MULTI, binary.NativeEndian.AppendUint32(nil, uint32(-errno)))
}

func errorMsg(seq uint32, errno int32) []byte {
	// The error, then the request's header.
	return nlMsg(seq, unix.NLMSG_ERROR, 0, append(binary.NativeEndian.AppendUint32(nil, uint32(-errno)), nlMsg(seq, listType, 0, nil)...))
}

// headerAttrs are a set's header attributes.
func headerAttrs(s Set, elements int) [][]byte {
	family := uint8(unix.AF_INET)
	data := [][]byte{nlNet32(nl.IPSET_ATTR_HASHSIZE, 1024), nlNet32(nl.IPSET_ATTR_MAXELEM, 65536)}
	switch {
	case s.Type == BitmapPort:
		from, to, _ := parsePortRange(s.PortRange)
		family = unix.AF_UNSPEC
		data = [][]byte{nlNet16(nl.IPSET_ATTR_PORT_FROM, from), nlNet16(nl.IPSET_ATTR_PORT_TO, to)}
	case s.Family == Inet6:
		family = unix.AF_INET6
	}
	data = append(data, nlNet32(nl.IPSET_ATTR_REFERENCES, 0), nlNet32(nl.IPSET_ATTR_MEMSIZE, 400), nlNet32(nl.IPSET_ATTR_ELEMENTS, uint32(elements)))
	return [][]byte{
		nlString(nl.IPSET_ATTR_TYPENAME, string(s.Type)),
		nlU8(nl.IPSET_ATTR_FAMILY, family),
		nlU8(nl.IPSET_ATTR_REVISION, 3),
		nlNest(nl.IPSET_ATTR_DATA, data...),
	}
}

// addrAttr is a nested address, as the kernel writes it (nla_put_in_addr:
// no NLA_F_NET_BYTEORDER, which the library would not read); with
// netOrder, flagged as our requests and the library's are.
func addrAttr(typ uint16, a netip.Addr) []byte {
	inner := uint16(nl.IPSET_ATTR_IPADDR_IPV6)
	if a.Is4() {
		inner = nl.IPSET_ATTR_IPADDR_IPV4
	}
	if netOrder {
		inner |= nl.NLA_F_NET_BYTEORDER
	}
	return nlNest(typ, nlAttr(inner, a.AsSlice()))
}

// netOrder makes addrAttr flag the addresses NLA_F_NET_BYTEORDER.
var netOrder bool

// entryAttr is a member's IPSET_ATTR_DATA.
func entryAttr(e Entry) []byte {
	var attrs [][]byte
	switch {
	case e.IP.IsValid():
		attrs = append(attrs, addrAttr(nl.IPSET_ATTR_IP, e.IP))
	case e.Net.IsValid():
		attrs = append(attrs, addrAttr(nl.IPSET_ATTR_IP, e.Net.Addr()), nlU8(nl.IPSET_ATTR_CIDR, uint8(e.Net.Bits())))
	}
	if e.IP2.IsValid() {
		attrs = append(attrs, addrAttr(nl.IPSET_ATTR_IP2, e.IP2))
	}
	if e.IP.IsValid() && e.Net.IsValid() {
		attrs = append(attrs, addrAttr(nl.IPSET_ATTR_IP2, e.Net.Addr()), nlU8(nl.IPSET_ATTR_CIDR2, uint8(e.Net.Bits())))
	}
	if e.Port != 0 || e.Protocol != "" {
		attrs = append(attrs, nlNet16(nl.IPSET_ATTR_PORT, e.Port))
	}
	if num, ok := protocolNumber(e.Protocol); ok {
		attrs = append(attrs, nlU8(nl.IPSET_ATTR_PROTO, num))
	}
	return nlNest(nl.IPSET_ATTR_DATA, attrs...)
}

func adtAttr(entries []Entry) []byte {
	var data [][]byte
	for _, e := range entries {
		data = append(data, entryAttr(e))
	}
	return nlNest(nl.IPSET_ATTR_ADT, data...)
}

// setMsgs are a set's messages: the header and up to perMsg members in the
// first, the rest perMsg at a time with the name only.
func setMsgs(seq uint32, c Contents, perMsg int) [][]byte {
	first := min(perMsg, len(c.Entries))
	msgs := [][]byte{listMsg(seq, slices.Concat(
		[][]byte{nlString(nl.IPSET_ATTR_SETNAME, c.Name)}, headerAttrs(c.Set, len(c.Entries)), [][]byte{adtAttr(c.Entries[:first])})...)}
	for rest := c.Entries[first:]; len(rest) > 0; {
		n := min(perMsg, len(rest))
		msgs = append(msgs, listMsg(seq, nlString(nl.IPSET_ATTR_SETNAME, c.Name), adtAttr(rest[:n])))
		rest = rest[n:]
	}
	return msgs
}

// typeContents is one set of every type and family with two members, as
// List reads them back.
func typeContents() []Contents {
	var out []Contents
	for _, tc := range typeCases() {
		s, _ := validateSet(tc.set)
		out = append(out, Contents{Set: s, Entries: []Entry{tc.entry, variant(tc.entry)}})
	}
	return out
}

// variant returns a second entry of the same shape.
func variant(e Entry) Entry {
	if e.IP.IsValid() {
		e.IP = e.IP.Next()
	}
	if e.Net.IsValid() {
		e.Net = netip.PrefixFrom(e.Net.Addr(), e.Net.Bits()+8).Masked()
	}
	if e.Port != 0 {
		e.Port++
	}
	return e
}

// parseAll parses datagrams as one dump's replies.
func parseAll(seq uint32, datagrams ...[]byte) ([]Contents, error) {
	l := listing{seq: seq}
	for _, d := range datagrams {
		if err := l.parse(d); err != nil {
			return nil, err
		}
	}
	if !l.done {
		return nil, errors.New("dump not done")
	}
	return l.sets, l.err
}

//go:linkname unserialize github.com/vishvananda/netlink.(*IPSetResult).unserialize
func unserialize(r *netlink.IPSetResult, msg []byte)

// libraryParse is the library's reading of the same replies (List before
// our parser): each message after its netlink header, unserialized, merged.
func libraryParse(t testing.TB, datagrams ...[]byte) []Contents {
	var results []netlink.IPSetResult
	for _, d := range datagrams {
		msgs, err := syscall.ParseNetlinkMessage(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Header.Type == listType {
				var r netlink.IPSetResult
				unserialize(&r, m.Data)
				results = append(results, r)
			}
		}
	}
	return mergeResults(results)
}

func TestParseDumpEveryType(t *testing.T) {
	want := typeContents()
	var msgs [][]byte
	for _, c := range want {
		msgs = append(msgs, setMsgs(7, c, 10)...)
	}
	datagram := slices.Concat(append(msgs, doneMsg(7, 0))...)
	got, err := parseAll(7, datagram)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse =\n%+v\nwant\n%+v", got, want)
	}
	if lib := libraryParse(t, datagram); !reflect.DeepEqual(got, lib) {
		t.Errorf("parse =\n%+v\nthe library read\n%+v", got, lib)
	}
}

// Addresses flagged NLA_F_NET_BYTEORDER read the same.
func TestParseDumpNetOrderAddresses(t *testing.T) {
	want := typeContents()
	netOrder = true
	defer func() { netOrder = false }()
	var msgs [][]byte
	for _, c := range want {
		msgs = append(msgs, setMsgs(7, c, 10)...)
	}
	got, err := parseAll(7, slices.Concat(append(msgs, doneMsg(7, 0))...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse =\n%+v\nwant\n%+v", got, want)
	}
}

// A set split over messages, in two datagrams, with another set after it,
// and replies to an earlier request (another sequence number) dropped.
func TestParseDumpSplitSet(t *testing.T) {
	big := Contents{Set: Set{Name: "big", Type: HashIPPort, Family: Inet6}}
	a := netip.MustParseAddr("fd00::")
	for i := range 25 {
		a = a.Next()
		big.Entries = append(big.Entries, Entry{IP: a, Protocol: "udp", Port: uint16(i)})
	}
	ports := Contents{Set: Set{Name: "ports", Type: BitmapPort, PortRange: "30000-32767"}, Entries: []Entry{{Port: 30000}, {Port: 32767}}}
	empty := Contents{Set: Set{Name: "empty", Type: HashNet, Family: Inet}}
	msgs := setMsgs(9, big, 10)
	first := slices.Concat(listMsg(8, nlString(nl.IPSET_ATTR_SETNAME, "stale")), msgs[0], msgs[1])
	second := slices.Concat(append(append([][]byte{msgs[2]}, setMsgs(9, ports, 10)...),
		listMsg(9, append([][]byte{nlString(nl.IPSET_ATTR_SETNAME, "empty")}, headerAttrs(empty.Set, 0)...)...), // no ADT
		doneMsg(9, 0), doneMsg(8, 0))...)
	got, err := parseAll(9, first, second)
	if err != nil {
		t.Fatal(err)
	}
	want := []Contents{big, ports, empty}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parse =\n%+v\nwant\n%+v", got, want)
	}
	// The library keeps the stale message (its Execute drops it by sequence
	// number before unserializing).
	if lib := libraryParse(t, slices.Concat(msgs[0], msgs[1]), second); !reflect.DeepEqual(got, lib) {
		t.Errorf("parse =\n%+v\nthe library read\n%+v", got, lib)
	}
}

func TestParseDumpErrors(t *testing.T) {
	set := listMsg(3, append([][]byte{nlString(nl.IPSET_ATTR_SETNAME, "s")}, headerAttrs(Set{Type: HashIP, Family: Inet}, 0)...)...)
	tests := []struct {
		name      string
		datagrams [][]byte
		want      error
	}{
		{"missing set", [][]byte{errorMsg(3, int32(syscall.ENOENT))}, syscall.ENOENT},
		{"gone in the middle", [][]byte{set, doneMsg(3, int32(syscall.ENOENT))}, syscall.ENOENT},
		{"ipset code", [][]byte{errorMsg(3, nl.IPSET_ERR_PROTOCOL)}, nl.IPSetError(nl.IPSET_ERR_PROTOCOL)},
		{"ipset code's errno", [][]byte{errorMsg(3, nl.IPSET_ERR_PROTOCOL)}, syscall.EINVAL},
		{"interrupted", [][]byte{slices.Concat(nlMsg(3, listType, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, set[unix.NLMSG_HDRLEN:]), doneMsg(3, 0))}, nil},
		{"unexpected type", [][]byte{nlMsg(3, unix.NFNL_SUBSYS_IPSET<<8|nl.IPSET_CMD_ADD, 0, set[unix.NLMSG_HDRLEN:]), doneMsg(3, 0)}, errMalformed},
		{"no set name", [][]byte{listMsg(3), doneMsg(3, 0)}, errMalformed},
	}
	for _, tt := range tests {
		_, err := parseAll(3, tt.datagrams...)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	// An error is kept until the dump's end, and its sets not returned.
	l := listing{seq: 3}
	if err := l.parse(slices.Concat(listMsg(3), set)); err != nil || l.done || l.err == nil {
		t.Errorf("after a bad message: parse %v, done %v, err %v; want nil, false, the message's", err, l.done, l.err)
	}
}

// TestParseDumpEnds: how a dump's datagrams end it or fail it, message by
// message: the framing (parse's own error), the end messages and their
// errno (ipset's private codes as the errno they mean), NLM_F_DUMP_INTR on
// any message, and replies to other requests before and after the end.
func TestParseDumpEnds(t *testing.T) {
	set := listMsg(3, append([][]byte{nlString(nl.IPSET_ATTR_SETNAME, "s")}, headerAttrs(Set{Type: HashIP, Family: Inet}, 0)...)...)
	other := listMsg(4, append([][]byte{nlString(nl.IPSET_ATTR_SETNAME, "other")}, headerAttrs(Set{Type: HashIP, Family: Inet}, 0)...)...)
	done := doneMsg(3, 0)
	tests := []struct {
		name      string
		datagrams [][]byte
		framing   bool  // parse itself fails: the dump cannot be followed
		want      error // the dump's error; nil: the set s alone, or no set
	}{
		{"set then done", [][]byte{set, done}, false, nil},
		{"done without errno", [][]byte{set, nlMsg(3, unix.NLMSG_DONE, unix.NLM_F_MULTI, nil)}, false, nil},
		{"an ack ends it", [][]byte{set, errorMsg(3, 0)}, false, nil},
		{"error without errno", [][]byte{set, nlMsg(3, unix.NLMSG_ERROR, 0, nil)}, false, errMalformed},
		{"error with 2 bytes of errno", [][]byte{set, nlMsg(3, unix.NLMSG_ERROR, 0, []byte{0xfe, 0xff})}, false, errMalformed},
		{"positive errno in done", [][]byte{set, doneMsg(3, -int32(syscall.ENOENT))}, false, errMalformed},
		{"positive errno in error", [][]byte{errorMsg(3, -int32(syscall.ENOENT))}, false, errMalformed},
		{"bytes after the messages", [][]byte{append(slices.Clone(set), 1, 2, 3, 4, 5, 6, 7, 8), done}, true, errMalformed},
		{"message shorter than its header", [][]byte{slices.Concat(set, []byte{8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0})}, true, errMalformed},
		{"message longer than the datagram", [][]byte{set[:len(set)-4]}, true, errMalformed},
		{"done interrupted", [][]byte{set, nlMsg(3, unix.NLMSG_DONE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, make([]byte, 4))}, false, errors.New("dump interrupted")},
		{"another request's reply first", [][]byte{slices.Concat(other, set), done}, false, nil},
		{"another request's reply after done", [][]byte{slices.Concat(set, done, other, []byte{1, 2, 3})}, false, nil},
		{"missing set", [][]byte{errorMsg(3, int32(syscall.ENOENT))}, false, syscall.ENOENT},
		{"exists", [][]byte{errorMsg(3, nl.IPSET_ERR_EXIST)}, false, syscall.EEXIST},
		{"busy", [][]byte{errorMsg(3, nl.IPSET_ERR_BUSY)}, false, syscall.EBUSY},
		{"referenced", [][]byte{set, doneMsg(3, nl.IPSET_ERR_REFERENCED)}, false, syscall.EBUSY},
		{"too many sets", [][]byte{errorMsg(3, nl.IPSET_ERR_MAX_SETS)}, false, syscall.ENOSPC},
		{"type specific", [][]byte{errorMsg(3, nl.IPSET_ERR_TYPE_SPECIFIC)}, false, syscall.EINVAL},
	}
	for _, tt := range tests {
		l := listing{seq: 3}
		var err error
		for _, d := range tt.datagrams {
			if err = l.parse(d); err != nil {
				break
			}
		}
		if framing := err != nil; framing != tt.framing {
			t.Errorf("%s: parse error %v; want one: %v", tt.name, err, tt.framing)
			continue
		}
		if err == nil {
			if !l.done {
				t.Errorf("%s: not done after its datagrams", tt.name)
				continue
			}
			err = l.err
		}
		switch {
		case tt.want == nil && (err != nil || len(l.sets) > 1 || len(l.sets) == 1 && l.sets[0].Name != "s"):
			t.Errorf("%s: sets %+v, error %v; want set s alone, nil", tt.name, l.sets, err)
		case tt.want != nil && err == nil:
			t.Errorf("%s: no error; want %v", tt.name, tt.want)
		case tt.want != nil && !errors.Is(err, tt.want) && err.Error() != tt.want.Error():
			t.Errorf("%s: error %v; want %v", tt.name, err, tt.want)
		}
	}
}

// Every truncation of a valid dump, and every corrupted attribute length or
// address, is an error and never a panic.
func TestParseDumpMalformed(t *testing.T) {
	var msgs [][]byte
	for _, c := range typeContents() {
		msgs = append(msgs, setMsgs(5, c, 1)...)
	}
	for i, m := range msgs {
		for cut := unix.NLMSG_HDRLEN + 1; cut < len(m); cut++ {
			// The message shortened, its length field too: the attributes
			// are cut.
			short := slices.Clone(m[:cut])
			binary.NativeEndian.PutUint32(short, uint32(cut))
			if _, err := parseAll(5, short, doneMsg(5, 0)); err == nil && !cutAtAttribute(m, cut) {
				t.Errorf("message %d cut at %d: no error", i, cut)
			}
			// The datagram cut, the length field unchanged.
			l := listing{seq: 5}
			if err := l.parse(m[:cut]); err == nil {
				t.Errorf("datagram %d cut at %d: no error", i, cut)
			}
		}
		for at := unix.NLMSG_HDRLEN + nl.SizeofNfgenmsg; at+1 < len(m); at++ {
			for _, v := range []byte{0, 3, 0xff} {
				bad := slices.Clone(m)
				bad[at] = v
				_, _ = parseAll(5, bad, doneMsg(5, 0)) // no panic
			}
		}
	}
	ip3 := listMsg(5, nlString(nl.IPSET_ATTR_SETNAME, "s"), nlNest(nl.IPSET_ATTR_ADT,
		nlNest(nl.IPSET_ATTR_DATA, nlNest(nl.IPSET_ATTR_IP, nlAttr(nl.IPSET_ATTR_IPADDR_IPV4, []byte{10, 0, 0})))))
	noProto := listMsg(5, nlString(nl.IPSET_ATTR_SETNAME, "s"), nlNest(nl.IPSET_ATTR_ADT,
		nlNest(nl.IPSET_ATTR_DATA, nlAttr(nl.IPSET_ATTR_PROTO, nil))))
	shortPort := listMsg(5, nlString(nl.IPSET_ATTR_SETNAME, "s"), nlNest(nl.IPSET_ATTR_ADT,
		nlNest(nl.IPSET_ATTR_DATA, nlAttr(nl.IPSET_ATTR_PORT|nl.NLA_F_NET_BYTEORDER, []byte{1}))))
	for name, m := range map[string][]byte{"3-byte address": ip3, "empty protocol": noProto, "1-byte port": shortPort} {
		if _, err := parseAll(5, m, doneMsg(5, 0)); !errors.Is(err, errMalformed) {
			t.Errorf("%s: error %v, want errMalformed", name, err)
		}
	}
}

// cutAtAttribute reports whether a message cut at n ends between two
// top-level attributes, or in the padding of one (a message without its
// last attributes is valid, and so is a last attribute without padding).
func cutAtAttribute(m []byte, n int) bool {
	at := unix.NLMSG_HDRLEN + nl.SizeofNfgenmsg
	for at < n {
		size := int(binary.NativeEndian.Uint16(m[at:]))
		if at+size <= n && n < at+netlinkbatch.Align(size) {
			return true
		}
		at += netlinkbatch.Align(size)
	}
	return at == n
}

func FuzzParseDump(f *testing.F) {
	var msgs [][]byte
	for _, c := range typeContents() {
		msgs = append(msgs, setMsgs(1, c, 1)...)
	}
	f.Add(slices.Concat(append(msgs, doneMsg(1, 0))...))
	f.Add(errorMsg(1, int32(syscall.ENOENT)))
	f.Add(slices.Concat(msgs[0], msgs[1]))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := listing{seq: 1}
		if err := l.parse(b); err != nil {
			return
		}
		for _, c := range l.sets {
			if c.Name == "" {
				t.Errorf("a set without a name: %+v", c)
			}
		}
	})
}

// TestFakeListKeep: List with keep returns the kept sets; a set keep
// destroys is absent.
func TestFakeListKeep(t *testing.T) {
	f := NewFake()
	for _, tc := range typeCases() {
		mustDo(t, f.CreateSet(tc.set))
		mustDo(t, f.AddEntry(tc.set.Name, tc.entry))
	}
	got, err := f.List(func(name string) bool {
		if name == "ip6" {
			mustDo(t, f.DestroySet(name))
		}
		return name == "ip4" || name == "ip6" || name == "port"
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
		if len(c.Entries) != 1 {
			t.Errorf("%s: %d entries, want 1", c.Name, len(c.Entries))
		}
	}
	if want := []string{"ip4", "port"}; !slices.Equal(names, want) {
		t.Errorf("List(keep) gave %q, want %q", names, want)
	}
}

// benchmarkDump is a dump of one hash:ip,port set with n members in
// datagrams of at most 32 KiB, as the kernel sends them.
func benchmarkDump(n int) [][]byte {
	c := Contents{Set: Set{Name: "KUBE-CLUSTER-IP", Type: HashIPPort, Family: Inet}}
	a := netip.MustParseAddr("10.96.0.0")
	for i := range n {
		a = a.Next()
		c.Entries = append(c.Entries, Entry{IP: a, Protocol: "tcp", Port: uint16(80 + i%3)})
	}
	var datagrams [][]byte
	var cur []byte
	for _, m := range append(setMsgs(1, c, 500), doneMsg(1, 0)) {
		if len(cur)+len(m) > 32<<10 {
			datagrams, cur = append(datagrams, cur), nil
		}
		cur = append(cur, m...)
	}
	return append(datagrams, cur)
}

// BenchmarkParseDump compares reading a 5k-member dump with the library
// (its messages split out as its Execute does, unserialized, merged) and
// with our parser. Neither includes the socket reads.
func BenchmarkParseDump(b *testing.B) {
	datagrams := benchmarkDump(5000)
	if got, _ := parseAll(1, datagrams...); len(got) != 1 || len(got[0].Entries) != 5000 {
		b.Fatalf("parse gave %d sets", len(got))
	}
	if lib := libraryParse(b, datagrams...); len(lib) != 1 || len(lib[0].Entries) != 5000 {
		b.Fatalf("the library gave %d sets", len(lib))
	}
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			libraryParse(b, datagrams...)
		}
	})
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseAll(1, datagrams...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// maxEntriesHint's comment gives the memory it reserves at most: 1.7 MB.
func TestMaxEntriesHintIsTheDocumentedSize(t *testing.T) {
	if size := unsafe.Sizeof(Entry{}) * maxEntriesHint; size < 1.65e6 || size >= 1.75e6 {
		t.Errorf("maxEntriesHint members take %d bytes, not the 1.7 MB its comment says", size)
	}
}
