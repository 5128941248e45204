// Command iptables-wrapper stands in for iptables, ip6tables and their -save
// and -restore commands in the kube-proxy image, which ships both iptables
// backends (legacy and nft). A container must write its rules with the
// backend the host uses, or its rules land in a table nobody reads. On its
// first run the wrapper finds out which backend holds the host's rules,
// points the six command names at that backend's multi-call binary (so later
// runs go straight there), and then runs the command it was called as.
//
// The decision, in order:
//  1. the kubelet's marker chains (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY,
//     kubelet 1.17 and later) in the nft backend's mangle table: nft;
//  2. the same chains in the legacy backend: legacy;
//  3. otherwise the backend holding more rules, nft on a tie (the default
//     of current distributions).
//
// The legacy backend is read without -t: naming a table makes the kernel
// create it, which would itself leave a legacy table behind.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// commandNames are the names the wrapper stands in for, all in one directory.
func commandNames() []string {
	return []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}
}

// installDir is where the image installs the wrapper and both backends.
const installDir = "/usr/sbin"

// saveTimeout bounds each detection run: a wedged nft socket must not wedge kube-proxy.
const saveTimeout = 5 * time.Second

func main() {
	// The backends' binaries are next to the wrapper (/usr/sbin in the image;
	// os.Executable needs /proc, which a bare chroot lacks).
	dir := installDir
	if self, err := os.Executable(); err == nil {
		dir = filepath.Dir(self)
	}
	name := filepath.Base(os.Args[0])
	if !isCommand(name) {
		// Called by its own name: report the decision and change nothing.
		fmt.Println(string(detect(runSave(dir))))
		return
	}
	mode := detect(runSave(dir))
	target := filepath.Join(dir, name)
	if err := linkAll(dir, multiBinary(mode)); err != nil {
		fmt.Fprintf(os.Stderr, "iptables-wrapper: %v; running %s directly\n", err, multiBinary(mode))
		target = filepath.Join(dir, multiBinary(mode))
	}
	// The multi-call binary picks the command from argv[0]; stdin stays for -restore.
	argv := append([]string{name}, os.Args[1:]...)
	if err := syscall.Exec(target, argv, os.Environ()); err != nil {
		fail(fmt.Errorf("exec %s: %w", target, err))
	}
}

func isCommand(name string) bool {
	return slices.Contains(commandNames(), name)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "iptables-wrapper: %v\n", err)
	os.Exit(1)
}

// Mode is an iptables backend.
type Mode string

const (
	Legacy Mode = "legacy"
	NFT    Mode = "nft"
)

func multiBinary(m Mode) string { return "xtables-" + string(m) + "-multi" }

// saveFunc runs "<family>-<mode>-save args..." and returns its output
// (empty when it fails: a backend the kernel lacks holds no rules).
type saveFunc func(mode Mode, family string, args ...string) []byte

// runSave runs the save commands shipped next to the wrapper.
func runSave(dir string) saveFunc {
	return func(mode Mode, family string, args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(dir, family+"-"+string(mode)+"-save"), args...)
		// Pipes rather than /dev/null, which a bare root may lack.
		cmd.Stdin, cmd.Stderr = bytes.NewReader(nil), io.Discard
		out, err := cmd.Output()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			fmt.Fprintf(os.Stderr, "iptables-wrapper: run %s: %v\n", cmd.Path, err)
		}
		return out
	}
}

// detect picks the backend; see the package comment.
func detect(save saveFunc) Mode {
	families := []string{"iptables", "ip6tables"}
	for _, f := range families {
		if hasKubeletChains(save(NFT, f, "-t", "mangle")) {
			return NFT
		}
	}
	legacyRules := 0
	for _, f := range families {
		out := save(Legacy, f)
		if hasKubeletChains(out) {
			return Legacy
		}
		legacyRules += countRules(out)
	}
	if legacyRules == 0 {
		return NFT
	}
	nftRules := 0
	for _, f := range families {
		nftRules += countRules(save(NFT, f))
	}
	if legacyRules > nftRules {
		return Legacy
	}
	return NFT
}

// hasKubeletChains reports whether a save output declares a chain the
// kubelet creates to mark the backend it uses.
func hasKubeletChains(saved []byte) bool {
	for _, line := range bytes.Split(saved, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(":KUBE-IPTABLES-HINT ")) || bytes.HasPrefix(line, []byte(":KUBE-KUBELET-CANARY ")) {
			return true
		}
	}
	return false
}

// countRules counts the rules ("-A" lines) of a save output.
func countRules(saved []byte) int {
	n := 0
	for _, line := range bytes.Split(saved, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("-A ")) {
			n++
		}
	}
	return n
}

// linkAll points every command name in dir at target, each replaced by a
// rename so that a concurrent run (IPv4 and IPv6 syncs) never sees it missing.
func linkAll(dir, target string) error {
	for _, c := range commandNames() {
		path := filepath.Join(dir, c)
		tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
		_ = os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link %s to %s: %w", path, target, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("link %s to %s: %w", path, target, err)
		}
	}
	return nil
}
