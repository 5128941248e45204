package conntrack

import (
	"fmt"
	"slices"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

func TestKernelFilterFlags(t *testing.T) {
	full := Filter{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.5"), ReplySrcPort: 8080}
	full6 := Filter{Protocol: ProtoTCP, OrigDst: addr("fd00:96::10"), OrigDstPort: 80, ReplySrc: addr("fd00:244::5"), ReplySrcPort: 8080}
	tests := []struct {
		name        string
		filter      kernelFilter
		orig, reply uint32
	}{
		{"every field, IPv4", kernelFilter{full, unix.AF_INET}, filterProtoNum | filterIPDst | filterPortDst, filterProtoNum | filterIPSrc | filterPortSrc},
		// Linux 6.1 compares IPv6 addresses inverted: left to matches.
		{"every field, IPv6: ports only", kernelFilter{full6, unix.AF_INET6}, filterProtoNum | filterPortDst, filterProtoNum | filterPortSrc},
		// SCTP ports are not compared by the kernel.
		{"SCTP: addresses only", kernelFilter{Filter{Protocol: ProtoSCTP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.5")}, unix.AF_INET}, filterProtoNum | filterIPDst, filterProtoNum | filterIPSrc},
		{"protocol only", kernelFilter{Filter{Protocol: ProtoUDP}, unix.AF_INET}, filterProtoNum, 0},
	}
	for _, tt := range tests {
		if got := tt.filter.origFlags(); got != tt.orig {
			t.Errorf("%s: origFlags() = %#x, want %#x", tt.name, got, tt.orig)
		}
		if got := tt.filter.replyFlags(); got != tt.reply {
			t.Errorf("%s: replyFlags() = %#x, want %#x", tt.name, got, tt.reply)
		}
	}
}

// TestKernelFilterExcludes checks what tells a kernel that ignored the
// filter: an entry the fields the kernel compares exclude.
func TestKernelFilterExcludes(t *testing.T) {
	e := testEntries()
	v4 := kernelFilter{Filter{Protocol: ProtoTCP, OrigDst: addr("10.96.0.10"), OrigDstPort: 80, ReplySrc: addr("10.244.1.5")}, unix.AF_INET}
	v6 := kernelFilter{Filter{Protocol: ProtoTCP, OrigDst: addr("fd00:96::99"), OrigDstPort: 80}, unix.AF_INET6}
	for _, tt := range []struct {
		filter kernelFilter
		entry  Entry
		want   bool
	}{
		{v4, e[0], false},
		{v4, e[1], true},  // another reply source
		{v4, e[2], true},  // UDP
		{v4, e[4], true},  // port 81
		{v6, e[5], false}, // IPv6 addresses are not the kernel's to compare
	} {
		if got := tt.filter.excludes(tt.entry); got != tt.want {
			t.Errorf("%s excludes %s = %v, want %v", tt.filter.Filter, tt.entry, got, tt.want)
		}
	}
}

func TestEntryFromMessage(t *testing.T) {
	want := testEntries()[0]
	msg := make([]byte, nfgenmsgLen)
	msg = append(msg, tupleAttr(nl.CTA_TUPLE_ORIG, want.Protocol, want.OrigSrc, want.OrigDst, want.OrigSrcPort, want.OrigDstPort).Serialize()...)
	msg = append(msg, tupleAttr(nl.CTA_TUPLE_REPLY, want.Protocol, want.ReplySrc, want.OrigSrc, want.ReplySrcPort, want.OrigSrcPort).Serialize()...)
	msg = append(msg, nl.NewRtAttr(nl.CTA_ID, nl.BEUint32Attr(7)).Serialize()...)
	got, err := entryFromMessage(msg)
	if err != nil || got != want {
		t.Errorf("entryFromMessage() = %v, %v; want %v", got, err, want)
	}
	if _, err := entryFromMessage(msg[:2]); err == nil {
		t.Error("entryFromMessage(2 bytes) succeeded")
	}
}

// TestDeleteRequestByReplyTuple checks that a dumped entry is deleted by
// its reply tuple and id, never by its original tuple: a new connection
// from the same client port re-opens the entry under the same original
// tuple and, often, the same id (deleteRequest).
func TestDeleteRequestByReplyTuple(t *testing.T) {
	e := testEntries()[0]
	orig := tupleAttr(nl.CTA_TUPLE_ORIG, e.Protocol, e.OrigSrc, e.OrigDst, e.OrigSrcPort, e.OrigDstPort)
	reply := tupleAttr(nl.CTA_TUPLE_REPLY, e.Protocol, e.ReplySrc, e.OrigSrc, e.ReplySrcPort, e.OrigSrcPort)
	id := nl.NewRtAttr(nl.CTA_ID, nl.BEUint32Attr(7))
	timeout := nl.NewRtAttr(nl.CTA_TIMEOUT, nl.BEUint32Attr(120))
	message := func(attrs ...*nl.RtAttr) []byte {
		msg := make([]byte, nfgenmsgLen)
		for _, a := range attrs {
			msg = append(msg, a.Serialize()...)
		}
		return msg
	}
	req, err := deleteRequest(unix.AF_INET, message(orig, reply, timeout, id))
	if err != nil {
		t.Fatalf("deleteRequest() error = %v", err)
	}
	b := req.Serialize()
	attrs, err := nl.ParseRouteAttr(b[unix.NLMSG_HDRLEN+nfgenmsgLen:])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range attrs {
		got = append(got, fmt.Sprintf("%d:%x", a.Attr.Type&nl.NLA_TYPE_MASK, a.Value))
	}
	want := []string{fmt.Sprintf("%d:%x", nl.CTA_TUPLE_REPLY, reply.Serialize()[4:]), fmt.Sprintf("%d:%x", nl.CTA_ID, []byte{0, 0, 0, 7})}
	if !slices.Equal(got, want) {
		t.Errorf("delete request attributes (type:value) = %v, want the reply tuple and id alone: %v", got, want)
	}
	// Without a tuple the kernel would flush the whole table.
	for name, msg := range map[string][]byte{"no reply tuple": message(orig, id), "no id": message(orig, reply)} {
		if _, err := deleteRequest(unix.AF_INET, msg); err == nil {
			t.Errorf("deleteRequest(%s) succeeded", name)
		}
	}
}

// TestDeleteRequestKeepsTheZone checks that the deletion of an entry of a
// conntrack zone names the zone: without CTA_ZONE the kernel looks the
// reply tuple up in zone 0, where an entry with the same tuples may live
// (the deletion then fails its id check and the entry stays).
func TestDeleteRequestKeepsTheZone(t *testing.T) {
	e := testEntries()[0]
	reply := tupleAttr(nl.CTA_TUPLE_REPLY, e.Protocol, e.ReplySrc, e.OrigSrc, e.ReplySrcPort, e.OrigSrcPort)
	zone := nl.NewRtAttr(nl.CTA_ZONE, nl.BEUint16Attr(5))
	id := nl.NewRtAttr(nl.CTA_ID, nl.BEUint32Attr(7))
	msg := make([]byte, nfgenmsgLen)
	for _, a := range []*nl.RtAttr{tupleAttr(nl.CTA_TUPLE_ORIG, e.Protocol, e.OrigSrc, e.OrigDst, e.OrigSrcPort, e.OrigDstPort), reply, zone, id} {
		msg = append(msg, a.Serialize()...)
	}
	req, err := deleteRequest(unix.AF_INET, msg)
	if err != nil {
		t.Fatalf("deleteRequest() error = %v", err)
	}
	attrs, err := nl.ParseRouteAttr(req.Serialize()[unix.NLMSG_HDRLEN+nfgenmsgLen:])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range attrs {
		got = append(got, fmt.Sprintf("%d:%x", a.Attr.Type&nl.NLA_TYPE_MASK, a.Value))
	}
	want := []string{fmt.Sprintf("%d:%x", nl.CTA_TUPLE_REPLY, reply.Serialize()[4:]), fmt.Sprintf("%d:0005", nl.CTA_ZONE), fmt.Sprintf("%d:00000007", nl.CTA_ID)}
	if !slices.Equal(got, want) {
		t.Errorf("delete request attributes (type:value) = %v, want %v", got, want)
	}
}

// TestMalformedMessagesAreErrors cuts a dumped message (with a zone, whose
// attribute is 6 bytes and padded to 8) at every length: each cut is an
// error or an entry, never a panic (netlink's ParseRouteAttr slices past
// the end of an attribute list whose last padding is missing), and a
// deletion is never built without the id.
func TestMalformedMessagesAreErrors(t *testing.T) {
	e := testEntries()[0]
	reply := tupleAttr(nl.CTA_TUPLE_REPLY, e.Protocol, e.ReplySrc, e.OrigSrc, e.ReplySrcPort, e.OrigSrcPort)
	reply.AddRtAttr(ctaTupleZone, nl.BEUint16Attr(9)) // a zone of the reply direction
	id := nl.NewRtAttr(nl.CTA_ID, nl.BEUint32Attr(7))
	msg := make([]byte, nfgenmsgLen)
	for _, a := range []*nl.RtAttr{tupleAttr(nl.CTA_TUPLE_ORIG, e.Protocol, e.OrigSrc, e.OrigDst, e.OrigSrcPort, e.OrigDstPort), reply, nl.NewRtAttr(nl.CTA_ZONE, nl.BEUint16Attr(5)), id} {
		msg = append(msg, a.Serialize()...)
	}
	if got, err := entryFromMessage(msg); err != nil || got != e {
		t.Errorf("entryFromMessage(with zones) = %v, %v; want %v", got, err, e)
	}
	for cut := range len(msg) {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("message cut at %d of %d: panic %v", cut, len(msg), r)
				}
			}()
			_, _ = entryFromMessage(msg[:cut])
			if _, err := deleteRequest(unix.AF_INET, msg[:cut]); err == nil && cut < len(msg)-len(id.Serialize()) {
				t.Errorf("deleteRequest(message cut at %d of %d) succeeded without the id", cut, len(msg))
			}
		}()
	}
}

// ctaTupleZone is CTA_TUPLE_ZONE of enum ctattr_tuple (a zone of one
// direction), which the vendored library does not define.
const ctaTupleZone = 3
