package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestFakeConformance(t *testing.T) {
	runConformance(t, func(*testing.T) Interface { return NewFake() })
}

func TestFakeTimeouts(t *testing.T) {
	f := NewFake()
	runTimeoutsConformance(t, f)
	want := "timeouts tcp=1h0m0s tcpfin=30s udp=10s\n"
	if got := f.Dump(); got != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", got, want)
	}
}

func TestKeyStrings(t *testing.T) {
	cases := []struct{ got, want string }{
		{ServiceKey{netip.MustParseAddr("10.0.0.1"), TCP, 80}.String(), "TCP 10.0.0.1:80"},
		{ServiceKey{netip.MustParseAddr("fd00::1"), SCTP, 3868}.String(), "SCTP [fd00::1]:3868"},
		{DestinationKey{netip.MustParseAddr("10.1.0.1"), 8080}.String(), "10.1.0.1:8080"},
		{DestinationKey{netip.MustParseAddr("fd00:1::1"), 53}.String(), "[fd00:1::1]:53"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// populated returns a Fake with one service and one real server per family.
func populated(t *testing.T) (*Fake, ServiceKey, DestinationKey) {
	t.Helper()
	f := NewFake()
	svc := svcKey(netip.MustParseAddr("10.0.0.1"), TCP, 80)
	rs := DestinationKey{netip.MustParseAddr("10.1.0.1"), 8080}
	svc6 := svcKey(netip.MustParseAddr("fd00::1"), UDP, 53)
	rs6 := DestinationKey{netip.MustParseAddr("fd00:1::1"), 53}
	for _, err := range []error{
		f.AddService(rrService(svc)), f.AddDestination(svc, Destination{DestinationKey: rs, Weight: 1}),
		f.AddService(rrService(svc6)), f.AddDestination(svc6, Destination{DestinationKey: rs6, Weight: 1}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return f, svc, rs
}

func TestFakeInjectFailsWithoutChange(t *testing.T) {
	newSvc := svcKey(netip.MustParseAddr("10.0.0.2"), TCP, 443)
	newRS := DestinationKey{netip.MustParseAddr("10.1.0.9"), 8443}
	cases := []struct {
		op, object string
		call       func(*Fake, ServiceKey, DestinationKey) error
	}{
		{"AddService", "TCP 10.0.0.2:443", func(f *Fake, _ ServiceKey, _ DestinationKey) error { return f.AddService(rrService(newSvc)) }},
		{"UpdateService", "TCP 10.0.0.1:80", func(f *Fake, s ServiceKey, _ DestinationKey) error {
			return f.UpdateService(Service{ServiceKey: s, Scheduler: "wrr"})
		}},
		{"DeleteService", "TCP 10.0.0.1:80", func(f *Fake, s ServiceKey, _ DestinationKey) error { return f.DeleteService(s) }},
		{"AddDestination", "TCP 10.0.0.1:80 -> 10.1.0.9:8443", func(f *Fake, s ServiceKey, _ DestinationKey) error {
			return f.AddDestination(s, Destination{DestinationKey: newRS, Weight: 1})
		}},
		{"UpdateDestination", "TCP 10.0.0.1:80 -> 10.1.0.1:8080", func(f *Fake, s ServiceKey, d DestinationKey) error {
			return f.UpdateDestination(s, Destination{DestinationKey: d})
		}},
		{"DeleteDestination", "TCP 10.0.0.1:80 -> 10.1.0.1:8080", func(f *Fake, s ServiceKey, d DestinationKey) error { return f.DeleteDestination(s, d) }},
		{"Flush", "all", func(f *Fake, _ ServiceKey, _ DestinationKey) error { return f.Flush() }},
		{"SetTimeouts", "timeouts", func(f *Fake, _ ServiceKey, _ DestinationKey) error { return f.SetTimeouts(Timeouts{TCP: time.Hour}) }},
	}
	injected := errors.New("injected")
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			f, svc, rs := populated(t)
			before := f.Dump()
			var gotOp, gotObject string
			f.Inject = func(op, object string) error {
				gotOp, gotObject = op, object
				return injected
			}
			if err := c.call(f, svc, rs); !errors.Is(err, injected) {
				t.Errorf("got %v, want the injected error", err)
			}
			if gotOp != c.op || gotObject != c.object {
				t.Errorf("Inject(%q, %q), want (%q, %q)", gotOp, gotObject, c.op, c.object)
			}
			if after := f.Dump(); after != before {
				t.Errorf("state changed:\n%s\nwas:\n%s", after, before)
			}
			f.Inject = nil
			if err := c.call(f, svc, rs); err != nil {
				t.Errorf("without injection: %v", err)
			}
		})
	}
}

func TestFakeCountsEveryCall(t *testing.T) {
	f, svc, rs := populated(t)
	_, _ = f.List()
	_, _ = f.List()
	_, _ = f.Timeouts()
	_ = f.SetTimeouts(Timeouts{})
	_ = f.UpdateDestination(svc, Destination{DestinationKey: rs, Weight: 3})
	_ = f.DeleteService(svcKey(netip.MustParseAddr("10.9.9.9"), TCP, 1)) // fails, still a call
	_ = f.Flush()
	want := map[string]int{
		"AddService": 2, "AddDestination": 2, "List": 2, "Timeouts": 1, "SetTimeouts": 1,
		"UpdateDestination": 1, "DeleteService": 1, "Flush": 1,
	}
	if fmt.Sprint(f.Calls) != fmt.Sprint(want) {
		t.Errorf("Calls %v, want %v", f.Calls, want)
	}
}

func TestFakeConnections(t *testing.T) {
	f, svc, rs := populated(t)
	if err := f.SetConnections(svc, rs, 3, 7); err != nil {
		t.Fatal(err)
	}
	// Weight changes keep the kernel's counts.
	if err := f.UpdateDestination(svc, Destination{DestinationKey: rs, Weight: 0, ActiveConn: 99}); err != nil {
		t.Fatal(err)
	}
	want := `TCP 10.0.0.1:80 rr flags=0x2 timeout=0
  -> 10.1.0.1:8080 weight=0 active=3 inactive=7
UDP [fd00::1]:53 rr flags=0x2 timeout=0
  -> [fd00:1::1]:53 weight=1 active=0 inactive=0
`
	if got := f.Dump(); got != want {
		t.Errorf("Dump:\n%s\nwant:\n%s", got, want)
	}
	vss, _ := f.List()
	if d := vss[0].Destinations[0]; d.ActiveConn != 3 || d.InactiveConn != 7 {
		t.Errorf("List gives %+v", d)
	}
	missing := DestinationKey{rs.Address, 9999}
	if err := f.SetConnections(svc, missing, 1, 1); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("SetConnections of a missing real server: %v", err)
	}
	otherSvc := svcKey(netip.MustParseAddr("10.0.0.9"), TCP, 80)
	if err := f.SetConnections(otherSvc, rs, 1, 1); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("SetConnections of a missing virtual server: %v", err)
	}
}

// List must hand out copies: callers may keep or change them.
func TestFakeListIsASnapshot(t *testing.T) {
	f, _, _ := populated(t)
	before := f.Dump()
	vss, _ := f.List()
	vss[0].Destinations[0].Weight = 42
	vss[0].Scheduler = "sh"
	if after := f.Dump(); after != before {
		t.Errorf("List result aliases the state:\n%s", after)
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	f := NewFake()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			key := svcKey(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), TCP, 80)
			_ = f.AddService(rrService(key))
			_ = f.AddDestination(key, Destination{DestinationKey: DestinationKey{netip.MustParseAddr("10.1.0.1"), 80}, Weight: 1})
			_, _ = f.List()
		})
	}
	wg.Wait()
	vss, _ := f.List()
	if len(vss) != 20 || f.Calls["AddDestination"] != 20 || f.Calls["List"] != 21 {
		t.Errorf("%d services, calls %v", len(vss), f.Calls)
	}
}

func TestFakeDestinationsOfOneService(t *testing.T) {
	f := NewFake()
	key := ServiceKey{Address: netip.MustParseAddr("10.0.0.1"), Protocol: TCP, Port: 80}
	if got, err := f.Destinations(key); err != nil || len(got) != 0 {
		t.Fatalf("Destinations of a missing service: %v, %v; want none, like the kernel", got, err)
	}
	if err := f.AddService(Service{ServiceKey: key, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"10.1.0.2", "10.1.0.1"} {
		d := Destination{DestinationKey: DestinationKey{Address: netip.MustParseAddr(ip), Port: 8080}, Weight: 1}
		if err := f.AddDestination(key, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.Destinations(key)
	if err != nil || len(got) != 2 || got[0].Address.String() != "10.1.0.1" {
		t.Fatalf("Destinations = %v, %v; want both, sorted", got, err)
	}
}
