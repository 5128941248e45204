package imagetest

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// machines and multiarch directories of the platforms the image is built for.
func elfMachine(platform string) (elf.Machine, string) {
	switch platform {
	case "linux/amd64":
		return elf.EM_X86_64, "x86_64-linux-gnu"
	case "linux/arm64":
		return elf.EM_AARCH64, "aarch64-linux-gnu"
	}
	return elf.EM_NONE, ""
}

// resolveIn follows symlinks of p (absolute, inside root) the way the
// loader would inside the container, and returns the final path in root.
func resolveIn(root, p string) (string, bool) {
	for hops := 0; hops < 16; hops++ {
		full := filepath.Join(root, p)
		info, err := os.Lstat(full)
		if err != nil {
			return "", false
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			return full, true
		}
		target, err := os.Readlink(full)
		if err != nil {
			return "", false
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(p), target)
		}
		p = path.Clean(target)
	}
	return "", false
}

// TestEveryELFFindsItsLibraries is ldd for every platform, without running
// anything: each ELF file is of the platform's machine, and its loader and
// DT_NEEDED libraries exist in the image where the loader looks.
func TestEveryELFFindsItsLibraries(t *testing.T) {
	u := open(t)
	for platform, img := range u.images {
		t.Run(platform, func(t *testing.T) {
			machine, triplet := elfMachine(platform)
			root := extractRootfs(t, img)
			checked := 0
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				f, err := elf.Open(p)
				if err != nil {
					return nil // not an ELF file
				}
				defer f.Close()
				checked++
				rel := strings.TrimPrefix(p, root)
				checkELF(t, root, rel, f, machine, triplet)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if checked < 10 {
				t.Errorf("checked %d ELF files; want kube-proxy, the wrapper, both xtables binaries, libraries and extensions", checked)
			}
		})
	}
}

func checkELF(t *testing.T, root, rel string, f *elf.File, machine elf.Machine, triplet string) {
	t.Helper()
	if f.Machine != machine {
		t.Errorf("%s: machine %s, want %s", rel, f.Machine, machine)
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		data := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(data, 0); err != nil {
			t.Errorf("%s: read PT_INTERP: %v", rel, err)
			continue
		}
		interp := string(bytes.TrimRight(data, "\x00"))
		if _, ok := resolveIn(root, interp); !ok {
			t.Errorf("%s: loader %s is not in the image", rel, interp)
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		t.Errorf("%s: DT_NEEDED: %v", rel, err)
	}
	for _, lib := range needed {
		found := false
		for _, dir := range []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/lib", "/usr/lib"} {
			if _, ok := resolveIn(root, path.Join(dir, lib)); ok {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: needs %s, which is not in the image", rel, lib)
		}
	}
}

// chrootRoot returns the amd64 root file system for running its programs
// in a chroot; it skips where that cannot work.
func chrootRoot(t *testing.T) string {
	t.Helper()
	u := open(t)
	if runtime.GOARCH != "amd64" || os.Geteuid() != 0 {
		t.Skipf("running the image's programs needs root on amd64 (have %s, uid %d)", runtime.GOARCH, os.Geteuid())
	}
	img := u.images["linux/amd64"]
	if img == nil {
		t.Skip("the image has no linux/amd64 platform")
	}
	return extractRootfs(t, img)
}

// run runs a command line on the host (the chroot is part of it) and
// returns its combined output.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestChrootVersions runs each program's --version. With the stamp hack/image.sh built
// with ($IPVS_PROXY_VERSION, $KUBE_VERSION from hack/test-image.sh), kube-proxy and
// ipvs-doctor must report it, and kube-proxy must take its Kubernetes version for
// upstream's (--show-hidden-metrics-for-version accepts the previous minor, 1.36 for 1.37).
func TestChrootVersions(t *testing.T) {
	root := chrootRoot(t)
	ours, kube := os.Getenv("IPVS_PROXY_VERSION"), os.Getenv("KUBE_VERSION")
	kubeProxyVersion, doctorVersion := "(ipvs-proxy ", "ipvs-doctor "
	if ours != "" && kube != "" {
		kubeProxyVersion, doctorVersion = "Kubernetes "+kube+" (ipvs-proxy "+ours+", commit ", "ipvs-doctor "+ours+" (commit "
		minor := strings.Split(kube, ".")[1]
		previous := "1." + strconv.Itoa(must(strconv.Atoi(minor))-1)
		run(t, "chroot", root, "/usr/local/bin/kube-proxy", "--show-hidden-metrics-for-version="+previous, "--write-config-to=/tmp/config.yaml")
	}
	for _, tt := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"/usr/local/bin/kube-proxy", "--version"}, kubeProxyVersion},
		{[]string{"/usr/local/bin/kube-proxy", "--version=raw"}, `GitVersion:"` + kube},
		{[]string{"/usr/local/bin/ipvs-doctor", "--version"}, doctorVersion},
		{[]string{"/usr/local/bin/ipvs-doctor", "--help"}, "Usage: ipvs-doctor"},
		{[]string{"/usr/sbin/iptables-legacy-save", "--version"}, "(legacy)"},
		{[]string{"/usr/sbin/iptables-legacy-restore", "--version"}, "(legacy)"},
		{[]string{"/usr/sbin/ip6tables-legacy", "--version"}, "(legacy)"},
		{[]string{"/usr/sbin/iptables-nft-save", "--version"}, "(nf_tables)"},
		{[]string{"/usr/sbin/ip6tables-nft-restore", "--version"}, "(nf_tables)"},
	} {
		out := run(t, append([]string{"chroot", root}, tt.cmd...)...)
		if !strings.Contains(out, tt.want) {
			t.Errorf("chroot %s = %q, want it to contain %q", strings.Join(tt.cmd, " "), out, tt.want)
		}
		t.Logf("%s: %s", tt.cmd[0], strings.TrimSpace(out))
	}
}

// TestChrootWrapperPicksBackend runs iptables-save through the wrapper in
// fresh network namespaces (nothing on the host is read or changed), with
// /proc mounted in the chroot as a container runtime does: with
// no rules it picks nft; after the kubelet's hint chain is created with
// the legacy backend it picks legacy. Either way the generic names end up
// pointing at that backend's binary and the rules come back.
func TestChrootWrapperPicksBackend(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  string
		want   string
		listed string
	}{
		{"empty namespace: nft", "", "xtables-nft-multi", ""},
		{"kubelet hint in legacy: legacy", "chroot \"$R\" /usr/sbin/iptables-legacy -t mangle -N KUBE-IPTABLES-HINT", "xtables-legacy-multi", ":KUBE-IPTABLES-HINT"},
		{"kubelet canary in nft: nft", "chroot \"$R\" /usr/sbin/iptables-nft -t mangle -N KUBE-KUBELET-CANARY", "xtables-nft-multi", ":KUBE-KUBELET-CANARY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := chrootRoot(t)
			if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
				t.Fatal(err)
			}
			script := "set -e\nmount -t proc proc \"$R/proc\"\n" + tt.setup + "\nchroot \"$R\" /usr/sbin/iptables-save\n"
			cmd := exec.Command("unshare", "--net", "--mount", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "R="+root)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("unshare --net: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.listed) {
				t.Errorf("iptables-save through the wrapper printed %q, want %q in it", out, tt.listed)
			}
			for _, c := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
				if got, err := os.Readlink(filepath.Join(root, "usr/sbin", c)); err != nil || got != tt.want {
					t.Errorf("/usr/sbin/%s -> %q, %v; want %s", c, got, err, tt.want)
				}
			}
		})
	}
}
