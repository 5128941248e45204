package main

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/moby/ipvs"
)

// fakeIPVS answers GetDestinations as a netlink handle would.
type fakeIPVS struct {
	dests []*ipvs.Destination
	err   error
	block chan struct{} // when set, the read waits for it
}

func (f fakeIPVS) GetDestinations(*ipvs.Service) ([]*ipvs.Destination, error) {
	if f.block != nil {
		<-f.block
	}
	return f.dests, f.err
}

// The watcher's real-server keys are what the rolling test builds from a pod's address
// (net.JoinHostPort(PodIPs[i].IP, port)), IPv6 included.
func TestRealServersKeys(t *testing.T) {
	svc, err := virtualServer("[fd00:10:96::a]:80")
	if err != nil {
		t.Fatal(err)
	}
	dests := []*ipvs.Destination{
		{Address: net.ParseIP("fd00:10:244:1::4"), Port: 8080, Weight: 1},
		{Address: net.IP{0xfd, 0, 0, 0x10, 0x2, 0x44, 0, 0x2, 0, 0, 0, 0, 0, 0, 0, 0x1a}, Port: 8080, Weight: 0, InactiveConnections: 2},
	}
	got, err := realServers(fakeIPVS{dests: dests}, svc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		pod string
		st  realState
	}{{"fd00:10:244:1::4", realState{weight: 1}}, {"fd00:10:244:2::1a", realState{inactive: 2}}} {
		key := net.JoinHostPort(want.pod, "8080")
		if st, ok := got[key]; !ok || st != want.st {
			t.Errorf("real server %s: %+v, %v (all: %v)", key, st, ok, got)
		}
	}
}

// A failed IPVS read (EINTR, ENOBUFS, a stray netlink message: the kernel answers a
// missing virtual server with an empty dump, not an error) says nothing of the real
// servers. Taken as "none", the next poll's diff printed a "del" for every real server,
// and the rolling test read each one's removal at that moment: a deleted pod's real
// server "gone" at the glitch, not when IPVS lost it (or "still a real server" never).
func TestRealServersReadError(t *testing.T) {
	svc, _ := virtualServer("10.96.0.10:80")
	before := map[string]realState{"10.244.1.4:8080": {weight: 0, inactive: 3}}
	now, err := realServers(fakeIPVS{err: syscall.EINTR}, svc)
	if err == nil {
		t.Fatalf("a failed read gave real servers %v and no error; the watcher would print %+v", now, changes("10.96.0.10:80", before, now))
	}
	if _, err := realServersWithin(fakeIPVS{err: syscall.ENOBUFS}, svc, time.Second); err == nil || errors.Is(err, errStuck) {
		t.Errorf("realServersWithin of a failed read: %v, want the read's error", err)
	}
	block := make(chan struct{})
	defer close(block)
	if _, err := realServersWithin(fakeIPVS{block: block}, svc, 20*time.Millisecond); !errors.Is(err, errStuck) {
		t.Errorf("realServersWithin of a read that never answers: %v, want errStuck", err)
	}
	if now, err := realServers(fakeIPVS{}, svc); err != nil || len(now) != 0 {
		t.Errorf("an empty virtual server (or none): %v, %v; want no real servers, no error", now, err)
	}
}
