package podkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A read that is neither profile is not accepted as one: the legacy module without
// node-start's conn_reuse_mode=0, a taint that is not the out-of-tree one, Debian's module
// with conn_reuse_mode changed.
func TestIPVSKernelProfileStrict(t *testing.T) {
	for _, out := range []string{
		"taint=OE\nsrcversion=0123ABCD\nconn_reuse_mode=1\n", // legacy module, stock reuse
		"taint=E\nsrcversion=\nconn_reuse_mode=1\n",          // unsigned, not out of tree
		"taint=P\nsrcversion=\nconn_reuse_mode=1\n",
		"taint=\nsrcversion=\nconn_reuse_mode=0\n", // Debian's module, legacy reuse
	} {
		k, err := parseIPVSKernel(out)
		if err != nil {
			continue
		}
		if p := k.Profile(); p == "legacy" || p == "stock" {
			t.Errorf("parseIPVSKernel(%q).Profile() = %s, want neither legacy nor stock", out, p)
		}
	}
}

// kernelScript run on a root without /sys/module/ip_vs/taint (cat fails): an error, not
// an empty taint read as Debian's module.
func TestKernelScriptTaintUnreadable(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	root := t.TempDir()
	for _, f := range []string{"proc/sys/net/ipv4/vs/conn_reuse_mode", "sys/module/ip_vs/taint"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/sys/net/ipv4/vs/conn_reuse_mode"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.NewReplacer("/sys/", root+"/sys/", "/proc/", root+"/proc/").Replace(kernelScript)
	run := func() string {
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("kernelScript: %v", err)
		}
		return string(out)
	}
	// The stock read: the taint file there, empty.
	if err := os.WriteFile(filepath.Join(root, "sys/module/ip_vs/taint"), []byte("\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k, err := parseIPVSKernel(run()); err != nil || k.Profile() != "stock" {
		t.Errorf("stock read: %s, %v; want stock", k, err)
	}
	// The taint file unreadable.
	if err := os.Remove(filepath.Join(root, "sys/module/ip_vs/taint")); err != nil {
		t.Fatal(err)
	}
	out := run()
	if k, err := parseIPVSKernel(out); err == nil {
		t.Errorf("no /sys/module/ip_vs/taint: read %q parsed as %s, want an error", out, k)
	}
}
