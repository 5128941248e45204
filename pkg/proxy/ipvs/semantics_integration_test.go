//go:build integration

package ipvs

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

// A restarted proxier finds a weight-0 real server with an established
// connection to a live pod (its endpoint not ready, on a Ready node): it
// keeps it, with the gate off and on, and the connection still gets
// answers. Once the endpoint leaves every slice, the gate deletes it; with
// the gate off it stays until idle, as upstream.
func TestKernelRestartKeepsConnectionsToLivePodsGateOff(t *testing.T) {
	restartWithConnectedLeftover(t, false)
}

func TestKernelRestartKeepsConnectionsToLivePodsGateOn(t *testing.T) {
	restartWithConnectedLeftover(t, true)
}

func restartWithConnectedLeftover(t *testing.T, gate bool) {
	n := newNode(t)
	n.addPod("pod-a", "10.244.0.10")
	n.addPod("pod-b", "10.244.0.11")
	cfg := testConfig(v1.IPv4Protocol)
	cfg.ImmediateTermination = gate
	p := newRealProxier(t, n, cfg)
	p.OnServiceAdd(webService())
	both := slice("web", discovery.AddressTypeIPv4, localEP("10.244.0.10"), localEP("10.244.0.11"))
	p.OnEndpointSliceAdd(both)
	syncOK(t, p)
	conn := keepAliveTo(t, "10.96.0.10:80", "pod-a")
	flap := both.DeepCopy()
	flap.Endpoints[0].Conditions = discovery.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(false), Terminating: ptr.To(false)}
	p.OnEndpointSliceUpdate(both, flap)
	syncOK(t, p)

	restarted := newRealProxier(t, n, cfg)
	restarted.OnServiceAdd(webService())
	restarted.OnEndpointSliceAdd(flap)
	syncOK(t, restarted)
	if w, active := realServer(t, "10.96.0.10:80", "10.244.0.10:8080"); w != "0" || active != "1" {
		t.Errorf("after the restart: pod-a's real server weight %q active %q, want 0 and 1:\n%s", w, active, ipvsadm(t))
	}
	if got, err := ask(conn); err != nil || got != "pod-a" {
		t.Errorf("the established connection after the restart: %q, %v; want pod-a's answer", got, err)
	}

	gone := flap.DeepCopy()
	gone.Endpoints = gone.Endpoints[1:]
	restarted.OnEndpointSliceUpdate(flap, gone)
	syncOK(t, restarted)
	w, _ := realServer(t, "10.96.0.10:80", "10.244.0.10:8080")
	if want := map[bool]string{false: "0", true: ""}[gate]; w != want {
		t.Errorf("once pod-a left the slice: its real server's weight %q, want %q (\"\": deleted):\n%s", w, want, ipvsadm(t))
	}
}

// keepAliveTo opens connections to vip until one is answered by pod, and
// returns it open (HTTP/1.1 keep-alive).
func keepAliveTo(t *testing.T, vip, pod string) net.Conn {
	t.Helper()
	for range 6 {
		conn, err := net.DialTimeout("tcp", vip, 3*time.Second)
		must(t, err)
		got, err := ask(conn)
		if err == nil && got == pod {
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		conn.Close()
	}
	t.Fatalf("no connection to %s reached %s", vip, pod)
	return nil
}

// ask sends one request on an open connection and returns the answer.
func ask(conn net.Conn) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// realServer reads one real server's weight and ActiveConn from ipvsadm
// ("" when absent).
func realServer(t *testing.T, vs, rs string) (weight, active string) {
	in := false
	for _, line := range strings.Split(ipvsadm(t), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP"):
			in = f[1] == vs
		case in && len(f) >= 5 && f[0] == "->" && f[1] == rs:
			return f[3], f[4]
		}
	}
	return "", ""
}
