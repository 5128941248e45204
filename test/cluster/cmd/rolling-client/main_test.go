package main

import (
	"net"
	"strings"
	"testing"
)

func TestVirtualServer(t *testing.T) {
	for _, tc := range []struct {
		vip    string
		family uint16
		port   uint16
	}{{"10.96.0.10:80", 2, 80}, {"[fd00:10:96::a]:8080", 10, 8080}} {
		svc, err := virtualServer(tc.vip)
		if err != nil {
			t.Fatalf("virtualServer(%q): %v", tc.vip, err)
		}
		if svc.AddressFamily != tc.family || svc.Port != tc.port || svc.Protocol != 6 {
			t.Errorf("virtualServer(%q) = family %d port %d protocol %d, want %d %d 6", tc.vip, svc.AddressFamily, svc.Port, svc.Protocol, tc.family, tc.port)
		}
	}
	// An IPv4-mapped address is the IPv4 virtual server (as the rolling test's familyOf
	// reads it): asked as AF_INET6 with moby/ipvs's 4-byte address, IPVS found none.
	if svc, err := virtualServer("[::ffff:10.96.0.10]:80"); err != nil || svc.AddressFamily != 2 || !svc.Address.Equal(net.IPv4(10, 96, 0, 10)) || len(svc.Address.To4()) != 4 {
		t.Errorf("virtualServer of an IPv4-mapped VIP = %+v, %v; want AF_INET 10.96.0.10", svc, err)
	}
	if _, err := virtualServer("10.96.0.10"); err == nil {
		t.Error("virtualServer without a port: no error")
	}
}

func TestChanges(t *testing.T) {
	before := map[string]realState{
		"10.244.1.2:9000": {weight: 1},
		"10.244.1.3:9000": {weight: 1, active: 1},
		"10.244.1.4:9000": {weight: 0, active: 1},
		"10.244.1.5:9000": {weight: 1, inactive: 3},
	}
	now := map[string]realState{
		"10.244.1.2:9000": {weight: 1, inactive: 9}, // counts at weight 1: not reported
		"10.244.1.3:9000": {weight: 0, active: 1},
		"10.244.1.4:9000": {weight: 0, active: 0, inactive: 1},
		"10.244.1.6:9000": {weight: 1},
	}
	got := map[string]Change{}
	for _, c := range changes("10.96.0.10:9000", before, now) {
		if c.Virtual != "10.96.0.10:9000" {
			t.Errorf("change %+v: virtual server %q", c, c.Virtual)
		}
		got[c.Real] = c
	}
	want := map[string]Change{
		"10.244.1.3:9000": {Event: "weight", Real: "10.244.1.3:9000", Weight: 0, Active: 1},
		"10.244.1.4:9000": {Event: "conns", Real: "10.244.1.4:9000", Weight: 0, Inactive: 1},
		"10.244.1.5:9000": {Event: "del", Real: "10.244.1.5:9000", Weight: 1, Inactive: 3},
		"10.244.1.6:9000": {Event: "add", Real: "10.244.1.6:9000", Weight: 1},
	}
	if len(got) != len(want) {
		t.Errorf("changes = %+v, want %+v", got, want)
	}
	for rs, w := range want {
		g := got[rs]
		g.Virtual = ""
		if g != w {
			t.Errorf("change of %s = %+v, want %+v", rs, g, w)
		}
	}
}

// load's schedule divides by the rate: at 0 (or below) the pool sent requests unpaced.
func TestClientRate(t *testing.T) {
	for _, r := range []string{"0", "-1"} {
		err := client([]string{"-target", "127.0.0.1:1", "-duration", "10ms", "-rate", r, "-ports", "1", "-first-port", "47999"})
		if err == nil || !strings.Contains(err.Error(), "-rate") {
			t.Errorf("client -rate %s: %v; want it refused", r, err)
		}
	}
}
