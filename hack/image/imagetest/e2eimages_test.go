package imagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestConformanceImages checks hack/conformance/images.sh's images (CONFORMANCE_IMAGES is
// their directory): the exact names upstream's e2e framework v1.37.2 asks kubelet for, the
// entrypoint and default arguments, and, as root on amd64, in a chroot, the commands the
// network tests exec in their pods (kubectl exec POD -- /bin/sh -x -c CMD). Busybox's sh
// runs its own ip applet before PATH's: /bin/ip is iproute2's (no selected test runs ip).
func TestConformanceImages(t *testing.T) {
	dir := os.Getenv("CONFORMANCE_IMAGES")
	if dir == "" {
		t.Skip("CONFORMANCE_IMAGES is not set; run hack/conformance/images.sh, then this test with CONFORMANCE_IMAGES=_output/conformance/images")
	}
	for _, tt := range []struct {
		file, ref       string
		entrypoint, cmd []string
		script          string // run with /bin/sh -x -c in the chroot (or, without a shell, the command itself)
		want            []string
	}{
		{
			"agnhost.oci.tar", "registry.k8s.io/e2e-test-images/agnhost:2.66.1", []string{"/agnhost"}, []string{"pause"},
			// The forms of service.go, jig.go and framework/network/utils.go; nothing listens
			// in the chroot, so the network commands fail fast and the script goes on.
			`/agnhost --help | head -n 3; /agnhost-2 --help >/dev/null && echo agnhost-2 ok
curl --version | head -n 1
curl -g -q -s --connect-timeout 1 --max-time 1 -o /dev/null -w "%{http_code}" http://127.0.0.1:1/ ; echo " curl exit $?"
wget --version | head -n 1
wget -q -O - -T 1 http://127.0.0.1:1/ ; echo "wget exit $?"
echo hostName | nc -v -t -w 1 127.0.0.1 1 ; echo "nc tcp exit $?"
readlink /bin/sh
echo hostName | nc -v -u -w 1 127.0.0.1 1 ; echo "nc udp exit $?"
ss -V; /bin/ip -V
echo "seq:$(seq 5 7 | tr -d '\n')"
test "$(echo abc | tail -n 1 | grep b)" = abc && echo grep ok
dd if=/agnhost of=/tmp/f bs=1k count=1 2>/dev/null && echo dd ok`,
			[]string{"agnhost-2 ok", "curl 7.", "curl exit 7", "GNU Wget", "wget exit 4", "port 1 (tcp) failed: Connection refused", "nc tcp exit 1", "dash", "ss utility, iproute2", "ip utility, iproute2", "seq:567", "grep ok", "dd ok"},
		},
		{
			"busybox.oci.tar", "registry.k8s.io/e2e-test-images/busybox:1.37.0-2", nil, []string{"sh"},
			`echo hello; sleep 0; ls /bin/sh; wget 2>&1 | head -n 1`,
			[]string{"hello", "/bin/sh", "BusyBox"},
		},
		{
			"nginx.oci.tar", "registry.k8s.io/e2e-test-images/nginx:1.27.0-2", []string{"/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/tmp"}, nil,
			`/bin/busybox httpd --help 2>&1 | head -n 1`,
			[]string{"BusyBox"},
		},
		{
			"coredns.oci.tar", "registry.k8s.io/coredns/coredns:v1.14.6", []string{"/coredns"}, nil,
			"/coredns -plugins", []string{"kubernetes", "forward", "loop", "ready", "health"},
		},
	} {
		t.Run(tt.file, func(t *testing.T) {
			u := openTarball(t, filepath.Join(dir, tt.file))
			if u.ref != tt.ref {
				t.Errorf("named %q, want %q (the e2e framework's name)", u.ref, tt.ref)
			}
			img := u.images["linux/amd64"]
			if img == nil || len(u.images) != 1 {
				t.Fatalf("platforms %v, want linux/amd64 alone", keys(u.images))
			}
			cfg := must(img.ConfigFile())
			if !slices.Equal(cfg.Config.Entrypoint, tt.entrypoint) || !slices.Equal(cfg.Config.Cmd, tt.cmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", cfg.Config.Entrypoint, cfg.Config.Cmd, tt.entrypoint, tt.cmd)
			}
			if runtime.GOARCH != "amd64" || os.Geteuid() != 0 {
				t.Skipf("running the image's programs needs root on amd64")
			}
			root := extractRootfs(t, img)
			// A container runtime provides /dev; the scripts write to /dev/null.
			if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("mknod", "-m", "666", filepath.Join(root, "dev/null"), "c", "1", "3").CombinedOutput(); err != nil {
				t.Fatalf("mknod /dev/null: %v: %s", err, out)
			}
			// And /proc: with it busybox's sh runs its own applets ahead of PATH (nc, wget),
			// as in a container; without it the test saw PATH's tools that pods never got.
			mountProc(t, root)
			args := []string{"chroot", root, "/bin/sh", "-x", "-c", tt.script}
			if _, err := os.Lstat(filepath.Join(root, "bin/sh")); err != nil {
				args = append([]string{"chroot", root}, strings.Fields(tt.script)...)
			}
			out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
			if err != nil {
				t.Fatalf("chroot /bin/sh -c: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			t.Logf("%s", out)
		})
	}
}

// mountProc mounts a proc file system at root/proc until the test ends.
func mountProc(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "proc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "proc", "proc", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount proc at %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}
