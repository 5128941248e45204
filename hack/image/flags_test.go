package main

import (
	"slices"
	"testing"
)

// The e2e images' flags (hack/conformance/images.sh): symlinks, an entrypoint of several
// words or none, default arguments.
func TestLinkCmdEntrypointFlags(t *testing.T) {
	opts, err := parseFlags([]string{"-platform", "linux/amd64=/stage", "-oci-dir", "o", "-out", "f.tar",
		"-iptables=false", "-binary", "bin/busybox=busybox", "-link", "bin/sh=/bin/busybox",
		"-link", "agnhost-2=agnhost", "-entrypoint", "/bin/busybox httpd -f", "-cmd", "-p 80"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []linkSpec{{"bin/sh", "/bin/busybox"}, {"agnhost-2", "agnhost"}}; !slices.Equal(opts.links, want) {
		t.Errorf("links = %v, want %v", opts.links, want)
	}
	cfg := configFile(opts, opts.platforms[0], nil)
	if got := cfg.Config.Entrypoint; !slices.Equal(got, []string{"/bin/busybox", "httpd", "-f"}) {
		t.Errorf("Entrypoint = %q", got)
	}
	if got := cfg.Config.Cmd; !slices.Equal(got, []string{"-p", "80"}) {
		t.Errorf("Cmd = %q", got)
	}

	opts, err = parseFlags([]string{"-platform", "linux/amd64=/stage", "-oci-dir", "o", "-out", "f.tar", "-entrypoint", "", "-cmd", "sh"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := configFile(opts, opts.platforms[0], nil); cfg.Config.Entrypoint != nil || !slices.Equal(cfg.Config.Cmd, []string{"sh"}) {
		t.Errorf("empty -entrypoint: Entrypoint %q, Cmd %q; want none and [sh]", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	// kube-proxy's image keeps its entrypoint and no Cmd.
	opts, _ = parseFlags([]string{"-platform", "linux/amd64=/stage", "-oci-dir", "o", "-out", "f.tar"})
	if cfg := configFile(opts, opts.platforms[0], nil); !slices.Equal(cfg.Config.Entrypoint, []string{"/" + kubeProxyPath}) || cfg.Config.Cmd != nil {
		t.Errorf("defaults: Entrypoint %q, Cmd %q", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	for _, bad := range []string{"/bin/sh=busybox", "bin/sh", "bin/sh="} {
		if _, err := parseFlags([]string{"-platform", "linux/amd64=/s", "-oci-dir", "o", "-out", "f", "-link", bad}); err == nil {
			t.Errorf("-link %q accepted", bad)
		}
	}
}
