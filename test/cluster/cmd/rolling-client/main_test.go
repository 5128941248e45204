package main

import "testing"

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
	if _, err := virtualServer("10.96.0.10"); err == nil {
		t.Error("virtualServer without a port: no error")
	}
}
