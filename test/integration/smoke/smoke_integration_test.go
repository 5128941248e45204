//go:build integration

package smoke

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// inNewNetns runs fn on a thread of its own in a fresh network namespace with lo up.
func inNewNetns(t *testing.T, fn func() error) {
	t.Helper()
	inFreshNetns(t, func() error {
		if _, err := run("/usr/bin/ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
		return fn()
	})
}

// inFreshNetns runs fn on a thread of its own in a fresh network namespace, untouched. The thread
// stays locked when fn returns, so the Go runtime discards it together with the namespace.
func inFreshNetns(t *testing.T, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// run executes a command and returns its combined output, failing with both on error.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), &cmdError{cmd: name + " " + strings.Join(args, " "), out: string(out), err: err}
	}
	return string(out), nil
}

type cmdError struct {
	cmd, out string
	err      error
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() + ": " + e.out }
func (e *cmdError) Unwrap() error { return e.err }

func TestRunsAsRoot(t *testing.T) {
	if uid := os.Geteuid(); uid != 0 {
		t.Fatalf("euid = %d, want 0", uid)
	}
}

func TestKernelFiles(t *testing.T) {
	for _, path := range []string{
		"/proc/net/ip_vs",
		"/proc/sys/net/ipv4/vs/conntrack",
		"/proc/sys/net/ipv4/vs/expire_nodest_conn",
		"/proc/sys/net/ipv4/vs/conn_reuse_mode",
		"/proc/sys/net/bridge/bridge-nf-call-iptables",
		"/proc/net/nf_conntrack",
		"/etc/protocols",
	} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("stat %s: %v", path, err)
		}
	}
}

// TestModulesLoaded checks that every module the VM was asked to load is in /proc/modules.
func TestModulesLoaded(t *testing.T) {
	loaded := map[string]bool{}
	f, err := os.Open("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for s := bufio.NewScanner(f); s.Scan(); {
		loaded[strings.Fields(s.Text())[0]] = true
	}
	order, err := os.ReadFile("/etc/vm/modules.order")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range strings.Fields(string(order)) {
		name := strings.ReplaceAll(strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".ko"), "-", "_")
		if !loaded[name] {
			t.Errorf("module %s (%s) is not loaded", name, path)
		}
	}
	for _, name := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "ip_vs_mh", "nf_conntrack_netlink",
		"xt_ipvs", "xt_set", "ip_set_hash_ipport", "ip_set_bitmap_port", "br_netfilter", "dummy", "veth"} {
		if !loaded[name] {
			t.Errorf("module %s is not loaded", name)
		}
	}
}

func TestTools(t *testing.T) {
	tests := []struct {
		name string
		cmds [][]string
		want []string // substrings of the last command's output
	}{
		{
			name: "dummy link",
			cmds: [][]string{
				{"/usr/bin/ip", "link", "add", "smoke0", "type", "dummy"},
				{"/usr/bin/ip", "addr", "add", "10.0.0.1/32", "dev", "smoke0"},
				{"/usr/bin/ip", "-o", "addr", "show", "dev", "smoke0"},
			},
			want: []string{"smoke0", "10.0.0.1/32"},
		},
		{
			name: "veth pair",
			cmds: [][]string{
				{"/usr/bin/ip", "link", "add", "smoke-a", "type", "veth", "peer", "name", "smoke-b"},
				{"/usr/bin/ip", "-o", "link", "show", "type", "veth"},
			},
			want: []string{"smoke-a", "smoke-b"},
		},
		{
			name: "ipvsadm virtual and real server",
			cmds: [][]string{
				{"ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr"},
				{"ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:8080", "-m", "-w", "1"},
				{"ipvsadm", "-A", "-u", "10.0.0.1:53", "-s", "mh"},
				{"ipvsadm", "-Ln"},
			},
			want: []string{"TCP  10.0.0.1:80 rr", "-> 10.0.0.2:8080", "Masq", "UDP  10.0.0.1:53 mh"},
		},
		{
			name: "iptables legacy nat rules",
			cmds: [][]string{
				{"iptables", "-t", "nat", "-N", "SMOKE-POSTROUTING"},
				{"iptables", "-t", "nat", "-A", "SMOKE-POSTROUTING", "-m", "comment", "--comment", "smoke",
					"-m", "mark", "--mark", "0x4000/0x4000", "-j", "MASQUERADE"},
				{"iptables", "-t", "filter", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"},
				{"iptables", "-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "RETURN"},
				{"iptables", "--version"},
				{"iptables", "-t", "nat", "-S"},
			},
			want: []string{"-A SMOKE-POSTROUTING", "MASQUERADE", "--dst-type LOCAL"},
		},
		{
			name: "ip6tables",
			cmds: [][]string{
				{"ip6tables", "-t", "nat", "-A", "POSTROUTING", "-j", "MASQUERADE"},
				{"ip6tables", "-t", "nat", "-L", "-n"},
			},
			want: []string{"MASQUERADE"},
		},
		{
			name: "ipset with iptables match",
			cmds: [][]string{
				{"ipset", "create", "x", "hash:ip,port"},
				{"ipset", "add", "x", "10.0.0.1,tcp:80"},
				{"ipset", "create", "ports", "bitmap:port", "range", "0-65535"},
				{"iptables", "-t", "nat", "-A", "PREROUTING", "-m", "set", "--match-set", "x", "dst,dst", "-j", "ACCEPT"},
				{"ipset", "list", "x"},
			},
			want: []string{"Type: hash:ip,port", "10.0.0.1,tcp:80"},
		},
		{
			name: "conntrack",
			cmds: [][]string{{"conntrack", "-L"}},
		},
		{
			// The expressions upstream's nftables mode writes (hack/bench-kernel.sh's
			// upstream-nftables side), read back as JSON as test/bench/nftrules does.
			name: "nft with upstream's nftables-mode expressions",
			cmds: [][]string{
				{"nft", "add", "table", "ip", "smoke"},
				{"nft", "add", "chain", "ip", "smoke", "pre", "{ type nat hook prerouting priority -100 ; }"},
				{"nft", "add", "chain", "ip", "smoke", "post", "{ type nat hook postrouting priority 100 ; }"},
				{"nft", "add", "chain", "ip", "smoke", "in", "{ type filter hook input priority -110 ; }"},
				{"nft", "add", "rule", "ip", "smoke", "in", "ct", "state", "new", "fib", "daddr", "type", "local", "reject"},
				{"nft", "add", "rule", "ip", "smoke", "post", "meta", "mark", "0x4000", "masquerade", "fully-random"},
				{"nft", "add", "rule", "ip", "smoke", "pre", "ip", "daddr", "10.96.1.0", "meta", "l4proto", "tcp", "dnat", "ip", "addr", ".", "port",
					"to", "numgen", "random", "mod", "2", "map", "{ 0 : 10.128.0.1 . 8080, 1 : 10.128.0.2 . 8080 }"},
				{"nft", "-j", "list", "table", "ip", "smoke"},
			},
			want: []string{`"numgen"`, `"10.128.0.2", 8080`, `"fib"`, `"masquerade"`, `"reject"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out string
			inNewNetns(t, func() error {
				for _, cmd := range tt.cmds {
					var err error
					if out, err = run(cmd[0], cmd[1:]...); err != nil {
						return err
					}
				}
				return nil
			})
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestIPv4RealServerNeedsLoopbackUp pins a kernel fact that real-kernel tests trip over: in a
// fresh namespace IPv4 has no local routing table until an address is up (lo up is enough), so
// IPVS classifies every IPv4 real server address as non-unicast and rejects it with EINVAL.
func TestIPv4RealServerNeedsLoopbackUp(t *testing.T) {
	inFreshNetns(t, func() error {
		if _, err := run("ipvsadm", "-A", "-t", "10.0.0.1:80"); err != nil {
			return err
		}
		if _, err := run("ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:80", "-m"); err == nil {
			t.Error("adding an IPv4 real server with lo down succeeded, want EINVAL")
		}
		if _, err := run("/usr/bin/ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
		_, err := run("ipvsadm", "-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:80", "-m")
		return err
	})
}

// TestIptablesIsLegacy guards against the nft backend, which the proxier does not target.
func TestIptablesIsLegacy(t *testing.T) {
	out, err := run("iptables", "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "legacy") {
		t.Errorf("iptables --version = %q, want legacy", out)
	}
}
