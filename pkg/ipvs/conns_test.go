package ipvs

import (
	"net/netip"
	"strings"
	"testing"
)

// The text Linux 6.1 writes (ip_vs_conn_seq_show), with IPv4, IPv6 and a
// protocol we do not program.
const procConns = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0A83202 9C40 0A600001 0050 0AF40002 1F90 SYN_RECV         59
TCP C0A83202 9C41 0A600001 0050 0AF40003 1F90 TIME_WAIT       119
UDP 0AF40009 A000 0A60000A 0035 0AF40004 0035 UDP             299
TCP fd00:0000:0000:0000:0000:0000:0000:0009 9C42 fd00:0000:0000:0000:0000:0000:0096:0001 01BB fd00:0000:0000:0000:0000:0000:0244:0002 2000 ESTABLISHED     899
AH  C0A83202 0000 0A600001 0000 0AF40002 0000 NONE             10
`

func TestParseConnections(t *testing.T) {
	var got []Connection
	if err := parseConnections(strings.NewReader(procConns), func(c Connection) bool { got = append(got, c); return true }); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := []Connection{
		{Protocol: TCP, Client: ap("192.168.50.2:40000"), Virtual: ap("10.96.0.1:80"), Real: ap("10.244.0.2:8080"), State: "SYN_RECV"},
		{Protocol: TCP, Client: ap("192.168.50.2:40001"), Virtual: ap("10.96.0.1:80"), Real: ap("10.244.0.3:8080"), State: "TIME_WAIT"},
		{Protocol: UDP, Client: ap("10.244.0.9:40960"), Virtual: ap("10.96.0.10:53"), Real: ap("10.244.0.4:53"), State: "UDP"},
		{Protocol: TCP, Client: ap("[fd00::9]:40002"), Virtual: ap("[fd00::96:1]:443"), Real: ap("[fd00::244:2]:8192"), State: "ESTABLISHED"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d connections, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("connection %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if want[0].Closing() || !want[1].Closing() || want[3].Closing() {
		t.Errorf("Closing: SYN_RECV and ESTABLISHED are not, TIME_WAIT is")
	}
	n := 0
	if err := parseConnections(strings.NewReader(procConns), func(Connection) bool { n++; return false }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("f returning false must stop the read; called %d times", n)
	}
	if err := parseConnections(strings.NewReader(procConns+"TCP C0A8 9C40\n"), func(Connection) bool { return true }); err == nil {
		t.Errorf("a truncated line must be an error")
	}
}
