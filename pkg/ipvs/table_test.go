package ipvs

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The text Linux 6.1 writes (ip_vs_info_seq_show): IPv4 with and without
// persistence and one-packet scheduling, a virtual server without real
// servers, IPv6, a firewall-mark service and a protocol we do not program,
// each with real servers that must not land on another service.
const procTable = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A600001:0050 rr 
  -> 0AF40002:1F90      Masq    1      2          3         
  -> 0AF40003:1F90      Masq    0      0          17        
UDP  0A60000A:0035 rr ops 
  -> 0AF40004:0035      Masq    1      0          0         
TCP  C0A80A01:7530 rr persistent 10800 FFFFFFFF
TCP  0A600002:0050 sh 
FWM  00000001 rr 
  -> 0AF40009:0050      Masq    1      0          0         
TCP  [fd00:0000:0000:0000:0000:0000:0096:0001]:01BB rr 
  -> [fd00:0000:0000:0000:0000:0000:0244:0002]:2000      Masq    1      0          0         
  -> [0000:0000:0000:0000:0000:ffff:0af4:0005]:2000      Masq    1      0          0         
AH   0A600003:0000 rr 
  -> 0AF40008:0000      Masq    1      0          0         
SCTP 0A600004:0BB8 rr 
  -> 0AF40006:0BB8      Masq    65535  0          0         
`

func TestParseTable(t *testing.T) {
	got, err := parseTable(strings.NewReader(procTable))
	if err != nil {
		t.Fatal(err)
	}
	key := func(p Protocol, ap string) ServiceKey {
		a := netip.MustParseAddrPort(ap)
		return ServiceKey{Address: a.Addr(), Protocol: p, Port: a.Port()}
	}
	dst := func(ap string, weight, active, inactive int) Destination {
		a := netip.MustParseAddrPort(ap)
		return Destination{DestinationKey: DestinationKey{Address: a.Addr(), Port: a.Port()}, Weight: weight, ActiveConn: active, InactiveConn: inactive}
	}
	want := map[ServiceKey][]Destination{
		key(TCP, "10.96.0.1:80"):       {dst("10.244.0.2:8080", 1, 2, 3), dst("10.244.0.3:8080", 0, 0, 17)},
		key(UDP, "10.96.0.10:53"):      {dst("10.244.0.4:53", 1, 0, 0)},
		key(TCP, "192.168.10.1:30000"): nil,
		key(TCP, "10.96.0.2:80"):       nil,
		key(TCP, "[fd00::96:1]:443"):   {dst("[fd00::244:2]:8192", 1, 0, 0), dst("10.244.0.5:8192", 1, 0, 0)},
		key(SCTP, "10.96.0.4:3000"):    {dst("10.244.0.6:3000", 65535, 0, 0)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseTable =\n%v\nwant\n%v", got, want)
	}
}

// A service read twice (the kernel finds records by position at each read,
// so one added or deleted meanwhile shifts the rest) keeps its last record.
func TestParseTableServiceReadTwice(t *testing.T) {
	text := strings.Join(strings.Split(procTable, "\n")[:3], "\n") + `
TCP  0A600001:0050 rr 
  -> 0AF40002:1F90      Masq    1      0          0         
TCP  0A600001:0050 rr 
  -> 0AF40003:1F90      Masq    1      0          0         
`
	got, err := parseTable(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{{DestinationKey: DestinationKey{Address: netip.MustParseAddr("10.244.0.3"), Port: 8080}, Weight: 1}}
	if d := got[ServiceKey{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}]; !reflect.DeepEqual(d, want) {
		t.Errorf("real servers = %v, want %v", d, want)
	}
}

func TestParseTableErrorsNameTheLine(t *testing.T) {
	header := strings.Join(strings.Split(procTable, "\n")[:3], "\n") + "\n"
	for name, tc := range map[string]struct{ text, want string }{
		"not the header":       {"Prot LocalAddress:Port\n", `line 1 "Prot LocalAddress:Port": not the header`},
		"short service line":   {header + "TCP  0A600001:0050\n", `line "TCP  0A600001:0050": 2 fields`},
		"bad service address":  {header + "TCP  0A6000:0050 rr\n", `address "0A6000": neither 8 hex digits nor [IPv6]`},
		"IPv4 in brackets":     {header + "TCP  [10.96.0.1]:0050 rr\n", `address "[10.96.0.1]": not IPv6`},
		"bad port":             {header + "TCP  0A600001:XYZ rr\n", `port "XYZ"`},
		"no colon":             {header + "TCP  0A600001 rr\n", `"0A600001": no colon`},
		"short real server":    {header + "TCP  0A600001:0050 rr\n  -> 0AF40002:1F90 Masq 1 0\n", `real server of TCP 10.96.0.1:80, line "  -> 0AF40002:1F90 Masq 1 0": 5 fields, want 6`},
		"bad weight":           {header + "TCP  0A600001:0050 rr\n  -> 0AF40002:1F90 Masq x 0 0\n", `weight "x"`},
		"bad inactive count":   {header + "TCP  0A600001:0050 rr\n  -> 0AF40002:1F90 Masq 1 0 -\n", `inactive connections "-"`},
		"bad real server addr": {header + "TCP  0A600001:0050 rr\n  -> [zz]:1F90 Masq 1 0 0\n", `address "[zz]": not IPv6`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseTable(strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "read IPVS table: ") {
				t.Errorf("err = %v, want one starting %q and containing %q", err, "read IPVS table: ", tc.want)
			}
		})
	}
}

// BenchmarkParseTable parses the text of 5,000 virtual servers with 10 real
// servers each, what a full sync reads at 5k Services.
func BenchmarkParseTable(b *testing.B) {
	var text strings.Builder
	text.WriteString(strings.Join(strings.Split(procTable, "\n")[:3], "\n") + "\n")
	for i := range 5000 {
		fmt.Fprintf(&text, "TCP  0A60%04X:0050 rr \n", i)
		for j := range 10 {
			fmt.Fprintf(&text, "  -> 0AF4%02X%02X:1F90      Masq    1      0          0         \n", i%256, j)
		}
	}
	b.SetBytes(int64(text.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseTable(strings.NewReader(text.String())); err != nil {
			b.Fatal(err)
		}
	}
}

// An IPv6 virtual server at an IPv4-mapped address (ipvsadm -A -t
// [::ffff:10.96.0.1]:80) is a kernel object of its own beside the IPv4 one
// at 10.96.0.1:80, but both print to the same key once unmapped: the real
// servers of one must not be given to the other. The netlink dump of each
// (its own address family) is the only way to tell them apart.
func TestParseTableIPv4MappedServiceIsNotTheIPv4One(t *testing.T) {
	header := strings.Join(strings.Split(procTable, "\n")[:3], "\n") + "\n"
	v4 := "TCP  0A600001:0050 rr \n  -> 0AF40002:1F90      Masq    1      0          0         \n"
	mapped := "TCP  [0000:0000:0000:0000:0000:ffff:0a60:0001]:0050 rr \n  -> [fd00:0000:0000:0000:0000:0000:0244:0002]:1F90      Masq    1      0          0         \n"
	key := ServiceKey{Address: netip.MustParseAddr("10.96.0.1"), Protocol: TCP, Port: 80}
	for name, text := range map[string]string{"IPv4 first": header + v4 + mapped, "IPv4-mapped first": header + mapped + v4} {
		t.Run(name, func(t *testing.T) {
			got, err := parseTable(strings.NewReader(text))
			if err != nil {
				t.Fatal(err)
			}
			if dsts, ok := got[key]; ok {
				t.Errorf("%s has real servers %v from the text, want it left to netlink (two virtual servers print as it)", key, dsts)
			}
		})
	}
}

// FuzzParseTable: no input panics, and what parses is of the shapes the
// netlink read gives (go test -fuzz FuzzParseTable ./pkg/ipvs/).
func FuzzParseTable(f *testing.F) {
	f.Add(procTable)
	lines := strings.Split(procTable, "\n")
	header := strings.Join(lines[:3], "\n") + "\n"
	for _, l := range lines[3:] {
		f.Add(header + l + "\n")
	}
	f.Add(header + "TCP  [0000:0000:0000:0000:0000:ffff:0a60:0001]:0050 rr \n  -> 0AF40002:1F90      Masq    2147483647 0          0         \n")
	f.Fuzz(func(t *testing.T, text string) {
		table, err := parseTable(strings.NewReader(text))
		if err != nil {
			return
		}
		for k, dsts := range table {
			if !k.Address.IsValid() || k.Address.Is4In6() || (k.Protocol != TCP && k.Protocol != UDP && k.Protocol != SCTP) {
				t.Fatalf("key %#v", k)
			}
			for _, d := range dsts {
				if !d.Address.IsValid() || d.Address.Is4In6() || d.Weight < 0 || d.ActiveConn < 0 || d.InactiveConn < 0 {
					t.Fatalf("real server %#v of %v", d, k)
				}
			}
		}
	})
}
