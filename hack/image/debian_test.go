package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianShell runs script after sourcing hack/lib.sh and debian.sh with the pins file
// pins, offered_versions replaced by a table (spec -> version) instead of the private apt
// state. It returns stdout, stderr and whether the script succeeded.
func debianShell(t *testing.T, pins string, offered map[string]string, script string) (string, string, bool) {
	t.Helper()
	pinsFile := filepath.Join(t.TempDir(), "debian-packages.txt")
	if err := os.WriteFile(pinsFile, []byte(pins), 0o644); err != nil {
		t.Fatal(err)
	}
	var stub strings.Builder
	stub.WriteString("offered_versions() { for s in \"$@\"; do case $s in\n")
	for spec, v := range offered {
		stub.WriteString("\t" + spec + ") echo \"$s " + v + "\" ;;\n")
	}
	stub.WriteString("esac; done; }\n")
	cmd := exec.Command("bash", "-c", `source hack/lib.sh && PLATFORMS="linux/amd64 linux/arm64" && source hack/image/debian.sh && `+
		"\n"+stub.String()+script)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "DEBIAN_PINS="+pinsFile)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), stderr.String(), err == nil
}

const testPins = "# comment\niptables=1.8.9-2\nlibc6=2.36-9+deb12u14\nlibc6:arm64=2.36-9+deb12u14+b1\nnetbase=6.4\n"

func TestDownloadSpecPinned(t *testing.T) {
	offered := map[string]string{"iptables:amd64": "1.8.9-2", "libc6:amd64": "2.36-9+deb12u14", "libc6:arm64": "2.36-9+deb12u14+b1", "netbase": "6.4"}
	cases := map[string]string{
		"download_spec iptables amd64": "iptables:amd64=1.8.9-2",
		"download_spec libc6 amd64":    "libc6:amd64=2.36-9+deb12u14",
		"download_spec libc6 arm64":    "libc6:arm64=2.36-9+deb12u14+b1", // the arch's own pin wins
		"download_spec netbase arm64":  "netbase=6.4",                    // Architecture: all
	}
	for script, want := range cases {
		if got, stderr, ok := debianShell(t, testPins, offered, "REQUIRE_PINS=1 "+script); !ok || got != want {
			t.Errorf("%s = %q (ok %v, stderr %q), want %q", script, got, ok, stderr, want)
		}
	}
}

// TestDownloadSpecMismatchFails: the host's candidate differs from the pin, or the host
// offers none: the download fails and says which package, which pin and what is offered.
func TestDownloadSpecMismatchFails(t *testing.T) {
	cases := []struct {
		offered map[string]string
		want    []string
	}{
		{map[string]string{"iptables:amd64": "1.8.9-3"}, []string{"iptables:amd64 is pinned to 1.8.9-2", "offer 1.8.9-3"}},
		{map[string]string{}, []string{"iptables:amd64 is pinned to 1.8.9-2", "offer no version of it"}},
	}
	for _, tc := range cases {
		got, stderr, ok := debianShell(t, testPins, tc.offered, "download_spec iptables amd64")
		if ok {
			t.Errorf("offered %v: download_spec succeeded with %q", tc.offered, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) || !strings.Contains(stderr, "debian-packages.txt") {
				t.Errorf("offered %v: stderr %q lacks %q or the pins file", tc.offered, stderr, w)
			}
		}
	}
	// fetch_debs stops before downloading anything.
	stdout, stderr, ok := debianShell(t, testPins, map[string]string{"iptables:amd64": "1.8.9-3", "netbase": "6.4"},
		`DEB_DIR=$(mktemp -d); PACKAGES=iptables; apt-get() { echo "apt-get ran: $*"; }; fetch_debs amd64`)
	if ok || strings.Contains(stdout, "apt-get ran") || !strings.Contains(stderr, "pinned to 1.8.9-2") {
		t.Errorf("fetch_debs with a mismatched pin: ok %v, stdout %q, stderr %q; want a failure before apt-get", ok, stdout, stderr)
	}
	// and downloads the pinned versions when they match
	stdout, stderr, ok = debianShell(t, testPins, map[string]string{"iptables:amd64": "1.8.9-2", "netbase": "6.4"},
		`DEB_DIR=$(mktemp -d); PACKAGES=iptables; apt-get() { echo "apt-get ran: $*"; }; fetch_debs amd64`)
	if !ok || !strings.HasSuffix(stdout, "download iptables:amd64=1.8.9-2 netbase=6.4") {
		t.Errorf("fetch_debs with matching pins: ok %v, stdout %q, stderr %q", ok, stdout, stderr)
	}
}

func TestDownloadSpecUnpinned(t *testing.T) {
	if got, _, ok := debianShell(t, testPins, nil, "download_spec ipset amd64"); !ok || got != "ipset:amd64" {
		t.Errorf("unpinned without REQUIRE_PINS: %q, %v; want ipset:amd64 (the host's candidate)", got, ok)
	}
	if _, stderr, ok := debianShell(t, testPins, nil, "REQUIRE_PINS=1 download_spec ipset amd64"); ok || !strings.Contains(stderr, "ipset:amd64 is not pinned") {
		t.Errorf("unpinned with REQUIRE_PINS=1: ok %v, stderr %q", ok, stderr)
	}
}

// TestDebFilePicksThePin: the staged .deb is the pinned version's, not the newest one
// in the cache; an epoch's ":" is "%3a" in the file name.
func TestDebFilePicksThePin(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"iptables_1.8.9-2_amd64.deb", "iptables_1.8.10-1_amd64.deb", "libfoo_1%3a2.0-1_amd64.deb", "netbase_6.4_all.deb"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pins := testPins + "libfoo=1:2.0-1\n"
	for name, want := range map[string]string{"iptables": "iptables_1.8.9-2_amd64.deb", "libfoo": "libfoo_1%3a2.0-1_amd64.deb", "netbase": "netbase_6.4_all.deb"} {
		got, stderr, ok := debianShell(t, pins, nil, "deb_file "+dir+" "+name+" amd64")
		if !ok || got != filepath.Join(dir, want) {
			t.Errorf("deb_file %s = %q (%v, %s), want %s", name, got, ok, stderr, want)
		}
	}
}

// TestImagePackagesArePinned: every Debian package of the image has a pin for each
// platform in the real pins file.
func TestImagePackagesArePinned(t *testing.T) {
	cmd := exec.Command("bash", "-c", `source hack/lib.sh && PLATFORMS="linux/amd64 linux/arm64" && source hack/image/debian.sh && `+
		`for p in $PACKAGES netbase; do for a in amd64 arm64; do echo "$p $a $(pinned_version $p $a)"; done; done`)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if len(strings.Fields(line)) != 3 {
			t.Errorf("no pin in hack/image/debian-packages.txt for %q", line)
		}
	}
}

// TestOfferedVersions reads apt-cache show's records (the real function, apt-cache
// replaced): name:arch, or the name alone for Architecture: all.
func TestOfferedVersions(t *testing.T) {
	records := "Package: iptables\nArchitecture: amd64\nVersion: 1.8.9-2\nDepends: libc6\n\n" +
		"Package: libc6\nArchitecture: arm64\nVersion: 2.36-9+deb12u14\n\nPackage: netbase\nArchitecture: all\nVersion: 6.4\n"
	cmd := exec.Command("bash", "-c", `source hack/lib.sh && PLATFORMS=linux/amd64 && source hack/image/debian.sh && `+
		`apt-cache() { printf "$RECORDS"; return 100; } && offered_versions iptables:amd64 libc6:arm64 netbase nosuch:amd64`)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "RECORDS="+records)
	out, err := cmd.Output()
	if want := "iptables:amd64 1.8.9-2\nlibc6:arm64 2.36-9+deb12u14\nnetbase 6.4\n"; err != nil || string(out) != want {
		t.Errorf("offered_versions = %q, %v; want %q", out, err, want)
	}
}
