package ipvs

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// The conformance cases run against the Fake (unit tests) and against the
// kernel (integration tests): both must give the same errors and the same
// end state, which is how we know the Fake is as strict as Linux.

// errMissingService is what any command naming a missing virtual server
// fails with (the kernel's ESRCH).
var errMissingService = missingServiceError{}

type step struct {
	desc string
	do   func(Interface) error
	want error // nil: must succeed; else errors.Is(err, want)
}

type conformanceCase struct {
	name  string
	steps []step
	want  string // FormatVirtualServers(List()) at the end
}

func svcKey(addr netip.Addr, proto Protocol, port uint16) ServiceKey {
	return ServiceKey{Address: addr, Protocol: proto, Port: port}
}

// rrService is a plain round-robin service with the netmask kube-proxy sets.
func rrService(key ServiceKey) Service {
	s := Service{ServiceKey: key, Scheduler: "rr", Netmask: 0xffffffff}
	if key.Address.Is6() {
		s.Netmask = 128
	}
	return s
}

func dst(addr netip.Addr, port uint16, weight int) Destination {
	return Destination{DestinationKey: DestinationKey{Address: addr, Port: port}, Weight: weight}
}

func addSvc(s Service, want error) step {
	return step{"AddService " + formatService(s), func(t Interface) error { return t.AddService(s) }, want}
}

func updateSvc(s Service, want error) step {
	return step{"UpdateService " + formatService(s), func(t Interface) error { return t.UpdateService(s) }, want}
}

func deleteSvc(k ServiceKey, want error) step {
	return step{"DeleteService " + k.String(), func(t Interface) error { return t.DeleteService(k) }, want}
}

func addDst(k ServiceKey, d Destination, want error) step {
	return step{"AddDestination " + destinationName(k, d.DestinationKey), func(t Interface) error { return t.AddDestination(k, d) }, want}
}

func updateDst(k ServiceKey, d Destination, want error) step {
	return step{"UpdateDestination " + destinationName(k, d.DestinationKey), func(t Interface) error { return t.UpdateDestination(k, d) }, want}
}

func deleteDst(k ServiceKey, d DestinationKey, want error) step {
	return step{"DeleteDestination " + destinationName(k, d), func(t Interface) error { return t.DeleteDestination(k, d) }, want}
}

func flush() step {
	return step{"Flush", func(t Interface) error { return t.Flush() }, nil}
}

func conformanceCases() []conformanceCase {
	vip4, vip6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")
	rs4a, rs4b := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")
	rs6a := netip.MustParseAddr("fd00:1::1")
	tcp4 := svcKey(vip4, TCP, 80)
	udp4 := svcKey(vip4, UDP, 53)
	sctp4 := svcKey(vip4, SCTP, 3868)
	tcp6 := svcKey(vip6, TCP, 80)
	udp6 := svcKey(vip6, UDP, 53)
	sctp6 := svcKey(vip6, SCTP, 3868)
	persistent4 := rrService(tcp4)
	persistent4.Scheduler, persistent4.Flags, persistent4.Timeout = "wrr", FlagPersistent, 10800
	persistent6 := rrService(tcp6)
	persistent6.Flags, persistent6.Timeout = FlagPersistent, 600
	shFlags := rrService(udp4)
	shFlags.Scheduler, shFlags.Flags = "sh", FlagSchedFlag1|FlagSchedFlag2
	badNetmask6 := rrService(udp6)
	badNetmask6.Netmask = 0
	unknownSched := rrService(tcp4)
	unknownSched.Scheduler = "nosuchsched"
	return []conformanceCase{
		{
			name: "every protocol and family",
			steps: []step{
				addSvc(rrService(tcp4), nil), addSvc(rrService(udp4), nil), addSvc(rrService(sctp4), nil),
				addSvc(rrService(tcp6), nil), addSvc(rrService(udp6), nil), addSvc(rrService(sctp6), nil),
				addDst(tcp4, dst(rs4a, 8080, 1), nil), addDst(tcp4, dst(rs4b, 8080, 2), nil),
				addDst(udp4, dst(rs4a, 5353, 1), nil), addDst(sctp4, dst(rs4a, 3868, 1), nil),
				addDst(tcp6, dst(rs6a, 8080, 1), nil), addDst(udp6, dst(rs6a, 5353, 1), nil),
				addDst(sctp6, dst(rs6a, 3868, 1), nil),
			},
			want: `SCTP 10.0.0.1:3868 rr flags=0x2 timeout=0
  -> 10.1.0.1:3868 weight=1 active=0 inactive=0
TCP 10.0.0.1:80 rr flags=0x2 timeout=0
  -> 10.1.0.1:8080 weight=1 active=0 inactive=0
  -> 10.1.0.2:8080 weight=2 active=0 inactive=0
UDP 10.0.0.1:53 rr flags=0x2 timeout=0
  -> 10.1.0.1:5353 weight=1 active=0 inactive=0
SCTP [fd00::1]:3868 rr flags=0x2 timeout=0
  -> [fd00:1::1]:3868 weight=1 active=0 inactive=0
TCP [fd00::1]:80 rr flags=0x2 timeout=0
  -> [fd00:1::1]:8080 weight=1 active=0 inactive=0
UDP [fd00::1]:53 rr flags=0x2 timeout=0
  -> [fd00:1::1]:5353 weight=1 active=0 inactive=0
`,
		},
		{
			name: "duplicates are EEXIST",
			steps: []step{
				addSvc(rrService(tcp4), nil), addSvc(rrService(tcp4), syscall.EEXIST),
				addSvc(unknownSched, syscall.EEXIST), // existence is checked first
				addDst(tcp4, dst(rs4a, 8080, 1), nil), addDst(tcp4, dst(rs4a, 8080, 5), syscall.EEXIST),
				addSvc(rrService(tcp6), nil), addSvc(rrService(tcp6), syscall.EEXIST),
				addDst(tcp6, dst(rs6a, 8080, 1), nil), addDst(tcp6, dst(rs6a, 8080, 1), syscall.EEXIST),
			},
			want: `TCP 10.0.0.1:80 rr flags=0x2 timeout=0
  -> 10.1.0.1:8080 weight=1 active=0 inactive=0
TCP [fd00::1]:80 rr flags=0x2 timeout=0
  -> [fd00:1::1]:8080 weight=1 active=0 inactive=0
`,
		},
		{
			name: "missing virtual server is ESRCH and ENOENT",
			steps: []step{
				updateSvc(rrService(tcp4), errMissingService), deleteSvc(tcp4, errMissingService),
				deleteSvc(tcp6, syscall.ENOENT),
				addDst(tcp4, dst(rs4a, 8080, 1), errMissingService), addDst(udp6, dst(rs6a, 53, 1), syscall.ENOENT),
				updateDst(tcp4, dst(rs4a, 8080, 1), errMissingService),
				deleteDst(tcp4, DestinationKey{rs4a, 8080}, errMissingService),
				addSvc(rrService(tcp4), nil),
				// Same address and port, other protocol: another service.
				addDst(udp4, dst(rs4a, 8080, 1), errMissingService),
			},
			want: "TCP 10.0.0.1:80 rr flags=0x2 timeout=0\n",
		},
		{
			name: "missing real server is ENOENT",
			steps: []step{
				addSvc(rrService(tcp4), nil), addDst(tcp4, dst(rs4a, 8080, 1), nil),
				updateDst(tcp4, dst(rs4b, 8080, 1), syscall.ENOENT),
				deleteDst(tcp4, DestinationKey{rs4b, 8080}, syscall.ENOENT),
				deleteDst(tcp4, DestinationKey{rs4a, 8081}, syscall.ENOENT),
				deleteDst(tcp4, DestinationKey{rs4a, 8080}, nil),
				deleteDst(tcp4, DestinationKey{rs4a, 8080}, syscall.ENOENT),
			},
			want: "TCP 10.0.0.1:80 rr flags=0x2 timeout=0\n",
		},
		{
			name: "update scheduler, persistence and weights",
			steps: []step{
				addSvc(rrService(tcp4), nil), addSvc(rrService(tcp6), nil), addSvc(rrService(udp4), nil),
				addDst(tcp4, dst(rs4a, 8080, 1), nil), addDst(tcp6, dst(rs6a, 8080, 1), nil),
				updateSvc(persistent4, nil), updateSvc(persistent6, nil), updateSvc(shFlags, nil),
				updateDst(tcp4, dst(rs4a, 8080, 0), nil), updateDst(tcp6, dst(rs6a, 8080, 7), nil),
			},
			want: `TCP 10.0.0.1:80 wrr flags=0x3 timeout=10800 netmask=0xffffffff
  -> 10.1.0.1:8080 weight=0 active=0 inactive=0
UDP 10.0.0.1:53 sh flags=0x1a timeout=0
TCP [fd00::1]:80 rr flags=0x3 timeout=600 netmask=128
  -> [fd00:1::1]:8080 weight=7 active=0 inactive=0
`,
		},
		{
			name: "add persistent services directly",
			steps: []step{
				addSvc(persistent4, nil), addSvc(persistent6, nil),
				addDst(tcp4, dst(rs4a, 8080, 1), nil),
			},
			want: `TCP 10.0.0.1:80 wrr flags=0x3 timeout=10800 netmask=0xffffffff
  -> 10.1.0.1:8080 weight=1 active=0 inactive=0
TCP [fd00::1]:80 rr flags=0x3 timeout=600 netmask=128
`,
		},
		{
			name: "invalid options",
			steps: []step{
				addSvc(unknownSched, syscall.ENOENT),
				addSvc(badNetmask6, syscall.EINVAL),
				addSvc(rrService(tcp4), nil), addSvc(rrService(udp6), nil),
				updateSvc(unknownSched, syscall.ENOENT),
				updateSvc(badNetmask6, syscall.EINVAL),
				addDst(tcp4, dst(rs4a, 8080, -1), syscall.ERANGE),
				addDst(tcp4, dst(rs4a, 8080, 1), nil),
				addDst(tcp4, dst(rs4a, 8080, -1), syscall.ERANGE), // before EEXIST
				updateDst(tcp4, dst(rs4a, 8080, -1), syscall.ERANGE),
				addDst(tcp4, dst(netip.MustParseAddr("224.0.0.1"), 80, 1), syscall.EINVAL),
				addDst(tcp4, dst(netip.MustParseAddr("0.0.0.0"), 80, 1), syscall.EINVAL),
				addDst(tcp4, dst(netip.MustParseAddr("255.255.255.255"), 80, 1), syscall.EINVAL),
				addDst(udp6, dst(netip.MustParseAddr("ff02::1"), 80, 1), syscall.EINVAL),
				addDst(udp6, dst(netip.MustParseAddr("::"), 80, 1), syscall.EINVAL),
				// Our own checks: a real server of the other family, a
				// protocol IPVS does not balance, an invalid address.
				addDst(tcp4, dst(rs6a, 8080, 1), syscall.EINVAL),
				addDst(udp6, dst(rs4a, 8080, 1), syscall.EINVAL),
				addSvc(rrService(svcKey(vip4, "ICMP", 0)), syscall.EPROTONOSUPPORT),
				addSvc(rrService(svcKey(netip.Addr{}, TCP, 80)), syscall.EINVAL),
			},
			want: `TCP 10.0.0.1:80 rr flags=0x2 timeout=0
  -> 10.1.0.1:8080 weight=1 active=0 inactive=0
UDP [fd00::1]:53 rr flags=0x2 timeout=0
`,
		},
		{
			name: "delete and flush",
			steps: []step{
				addSvc(rrService(tcp4), nil), addSvc(rrService(udp4), nil), addSvc(rrService(sctp6), nil),
				addDst(tcp4, dst(rs4a, 8080, 1), nil),
				deleteSvc(tcp4, nil), deleteSvc(tcp4, errMissingService),
				flush(), flush(),
				addSvc(rrService(tcp4), nil),
			},
			want: "TCP 10.0.0.1:80 rr flags=0x2 timeout=0\n",
		},
	}
}

// runConformance runs every case on a fresh table from newTable.
func runConformance(t *testing.T, newTable func(t *testing.T) Interface) {
	for _, tc := range conformanceCases() {
		t.Run(tc.name, func(t *testing.T) {
			table := newTable(t)
			for i, s := range tc.steps {
				checkStep(t, i, s, s.do(table))
			}
			vss, err := table.List()
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got := FormatVirtualServers(vss); got != tc.want {
				t.Errorf("end state:\n%s\nwant:\n%s", got, tc.want)
			}
			checkListFamily(t, table, tc.want)
		})
	}
}

// checkListFamily: the two families' lists hold their family only and
// together make the whole table.
func checkListFamily(t *testing.T, table Interface, want string) {
	t.Helper()
	var both []VirtualServer
	for _, ipv6 := range []bool{false, true} {
		vss, err := table.ListFamily(ipv6)
		if err != nil {
			t.Fatalf("ListFamily(%v): %v", ipv6, err)
		}
		for _, vs := range vss {
			if vs.Address.Is6() != ipv6 {
				t.Errorf("ListFamily(%v) gave %s", ipv6, vs.ServiceKey)
			}
		}
		both = append(both, vss...)
	}
	if got := FormatVirtualServers(both); got != want {
		t.Errorf("both families' lists:\n%s\nwant:\n%s", got, want)
	}
}

func checkStep(t *testing.T, i int, s step, err error) {
	t.Helper()
	switch {
	case s.want == nil && err != nil:
		t.Errorf("step %d %s: %v", i, s.desc, err)
	case s.want != nil && !errors.Is(err, s.want):
		t.Errorf("step %d %s: got %v, want %v", i, s.desc, err, s.want)
	case s.want == errMissingService && !(errors.Is(err, syscall.ENOENT) && errors.Is(err, syscall.ESRCH)):
		t.Errorf("step %d %s: %v matches not both ENOENT and ESRCH", i, s.desc, err)
	}
}

// runTimeoutsConformance checks defaults, partial updates and validation.
func runTimeoutsConformance(t *testing.T, table Interface) {
	got, err := table.Timeouts()
	if err != nil {
		t.Fatalf("Timeouts: %v", err)
	}
	want := Timeouts{TCP: defaultTCPTimeout, TCPFin: defaultTCPFinTimeout, UDP: defaultUDPTimeout}
	if got != want {
		t.Errorf("default timeouts %+v, want %+v", got, want)
	}
	updates := []struct {
		set     Timeouts
		wantErr error
		want    Timeouts
	}{
		{Timeouts{TCP: 3600 * time.Second}, nil, Timeouts{TCP: time.Hour, TCPFin: 120 * time.Second, UDP: 300 * time.Second}},
		{Timeouts{TCPFin: 30 * time.Second, UDP: 10 * time.Second}, nil, Timeouts{TCP: time.Hour, TCPFin: 30 * time.Second, UDP: 10 * time.Second}},
		{Timeouts{}, nil, Timeouts{TCP: time.Hour, TCPFin: 30 * time.Second, UDP: 10 * time.Second}},
		{Timeouts{UDP: 500 * time.Millisecond}, syscall.EINVAL, Timeouts{TCP: time.Hour, TCPFin: 30 * time.Second, UDP: 10 * time.Second}},
		{Timeouts{TCP: -time.Second}, syscall.EINVAL, Timeouts{TCP: time.Hour, TCPFin: 30 * time.Second, UDP: 10 * time.Second}},
	}
	for _, u := range updates {
		if err := table.SetTimeouts(u.set); !errors.Is(err, u.wantErr) {
			t.Errorf("SetTimeouts(%+v): got %v, want %v", u.set, err, u.wantErr)
		}
		got, err := table.Timeouts()
		if err != nil || got != u.want {
			t.Errorf("after SetTimeouts(%+v): %+v, %v; want %+v", u.set, got, err, u.want)
		}
	}
}
