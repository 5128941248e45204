package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/hack/image/spdxcheck"
)

// TestSBOM builds the SBOM of a stage holding a Go program (this test binary) and a
// program without Go build information, with two Debian packages.
func TestSBOM(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"kube-proxy": data, "busybox": []byte("#!/bin/sh\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := options{image: "registry.example/net/kube-proxy:v0.1.0", version: "v0.1.0", revision: "abc", title: "t",
		created: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), distro: "debian-12"}
	p := platformStage{os: "linux", arch: "arm64", dir: dir}
	got, err := sbom(opts, p, []string{"libc6=2.36-9+deb12u14", "libfoo=1:2.0-1"},
		[]sbomBinary{{"usr/local/bin/kube-proxy", "kube-proxy"}, {"bin/busybox", "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxcheck.Check(got)
	if err != nil {
		t.Fatalf("SBOM does not check: %v\n%s", err, got)
	}
	purls := map[string]string{}
	for _, pkg := range doc.Packages {
		purls[pkg.Name] = pkg.Purl()
	}
	for name, want := range map[string]string{
		"libc6":                                  "pkg:deb/debian/libc6@2.36-9+deb12u14?arch=arm64&distro=debian-12",
		"libfoo":                                 "pkg:deb/debian/libfoo@1%3A2.0-1?arch=arm64&distro=debian-12",
		"github.com/google/go-containerregistry": "pkg:golang/github.com/google/go-containerregistry@v0.22.1",
		"stdlib":                                 "pkg:golang/stdlib@" + strings.TrimPrefix(goVersionOf(t, self), "go"),
	} {
		if purls[name] != want {
			t.Errorf("package %s: purl %q, want %q", name, purls[name], want)
		}
	}
	if _, ok := purls["kube-proxy"]; !ok {
		t.Error("no package for the kube-proxy program")
	}
	if _, ok := purls["busybox"]; !ok {
		t.Error("no package for a program without Go build information")
	}
	again, err := sbom(opts, p, []string{"libc6=2.36-9+deb12u14", "libfoo=1:2.0-1"},
		[]sbomBinary{{"usr/local/bin/kube-proxy", "kube-proxy"}, {"bin/busybox", "busybox"}})
	if err != nil || string(again) != string(got) {
		t.Errorf("the same stage gave another SBOM (the image would not be reproducible): %v", err)
	}
}

func TestSBOMFile(t *testing.T) {
	p := platformStage{os: "linux", arch: "amd64"}
	if got := sbomFile("/o/kube-proxy.oci.tar", p); got != "/o/kube-proxy.linux-amd64.spdx.json" {
		t.Errorf("sbomFile = %s", got)
	}
}

// goVersionOf is the Go version a binary was built with.
func goVersionOf(t *testing.T, file string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return bi.GoVersion
}
