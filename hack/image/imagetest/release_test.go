package imagetest

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/ipvs-proxy/ipvs-proxy/hack/image/spdxcheck"
)

// releaseDir is make release's output (hack/release.sh sets RELEASE_DIR).
func releaseDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RELEASE_DIR")
	if dir == "" {
		t.Skip("RELEASE_DIR is not set; run make release")
	}
	return dir
}

// releaseImage reads image.txt: the reference, the index digest, the pinned reference.
func releaseImage(t *testing.T, dir string) (ref, digest, pinned string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "image.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		fields[k] = v
	}
	ref, digest, pinned = fields["image"], fields["digest"], fields["pinned"]
	if ref == "" || !strings.HasPrefix(digest, "sha256:") || !strings.HasSuffix(pinned, "@"+digest) {
		t.Fatalf("image.txt = %q: want image, digest sha256:..., pinned REPOSITORY@digest", data)
	}
	return ref, digest, pinned
}

// TestReleaseChecksums: SHA256SUMS lists every other file of the release, with its sum.
func TestReleaseChecksums(t *testing.T) {
	dir := releaseDir(t)
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		sum, name, ok := strings.Cut(scanner.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's", scanner.Text())
		}
		listed[name] = sum
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "SHA256SUMS" {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) != len(listed) {
		t.Errorf("SHA256SUMS lists %d files, the release has %d: %v", len(listed), len(files), files)
	}
	for _, name := range files {
		if got := fileSHA256(t, filepath.Join(dir, name)); listed[name] != got {
			t.Errorf("%s: SHA256SUMS says %q, the file's is %s", name, listed[name], got)
		}
	}
	for _, want := range []string{"kube-proxy.oci.tar", "LICENSE", "CHANGELOG.md", "deploy/daemonset.yaml",
		"kube-proxy.linux-amd64.spdx.json", "kube-proxy.linux-arm64.spdx.json"} {
		if _, ok := listed[want]; !ok {
			t.Errorf("the release lacks %s", want)
		}
	}
}

func fileSHA256(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestReleaseImage: the tarball is the image image.txt names, with that index digest,
// each platform's SBOM beside it checks, and its labels carry the binaries' version.
func TestReleaseImage(t *testing.T) {
	dir := releaseDir(t)
	ref, digest, _ := releaseImage(t, dir)
	u := openTarball(t, filepath.Join(dir, "kube-proxy.oci.tar"))
	if got := must(u.index.Digest()).String(); got != digest {
		t.Errorf("the tarball's index digest is %s, image.txt says %s", got, digest)
	}
	if !strings.HasSuffix(u.ref, "/"+strings.TrimPrefix(ref, "docker.io/")) && u.ref != ref {
		t.Errorf("the tarball names the image %q, image.txt %q", u.ref, ref)
	}
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		img := u.images[platform]
		if img == nil {
			t.Fatalf("the release image lacks %s", platform)
		}
		data, err := os.ReadFile(filepath.Join(dir, "kube-proxy."+strings.ReplaceAll(platform, "/", "-")+".spdx.json"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := spdxcheck.Check(data); err != nil {
			t.Errorf("%s SBOM: %v", platform, err)
		}
	}
}

// TestReleaseBinaries: each binary is a static ELF of its architecture; the amd64 ones
// print the image's version.
func TestReleaseBinaries(t *testing.T) {
	dir := releaseDir(t)
	u := openTarball(t, filepath.Join(dir, "kube-proxy.oci.tar"))
	version := must(u.images["linux/amd64"].ConfigFile()).Config.Labels["org.opencontainers.image.version"]
	for _, arch := range []string{"amd64", "arm64"} {
		machine, _ := elfMachine("linux/" + arch)
		for _, name := range []string{"kube-proxy", "ipvs-doctor"} {
			file := filepath.Join(dir, name+"-linux-"+arch)
			f, err := elf.Open(file)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			interp := f.Section(".interp")
			f.Close()
			if f.Machine != machine || interp != nil {
				t.Errorf("%s: machine %v (want %v), loader section %v (want none: static)", file, f.Machine, machine, interp != nil)
			}
			if arch != runtime.GOARCH {
				continue
			}
			out, err := exec.Command(file, "--version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), version+" (commit ") && !strings.Contains(string(out), "(ipvs-proxy "+version+",") {
				t.Errorf("%s --version = %q, %v; want the image's version %s", file, out, err, version)
			}
		}
	}
}

// TestReleaseManifestsPinned: every image reference in the release's deploy/ is the pinned
// one, as written and as kustomize renders deploy/ and the kubeadm overlay.
func TestReleaseManifestsPinned(t *testing.T) {
	dir := releaseDir(t)
	_, _, pinned := releaseImage(t, dir)
	deploy := filepath.Join(dir, "deploy")
	seen := 0
	err := filepath.WalkDir(deploy, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if _, image, ok := strings.Cut(line, "image: "); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				seen++
				if image != pinned {
					t.Errorf("%s: image %q, want %s", p, image, pinned)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 2 {
		t.Errorf("found %d image references under %s; want the DaemonSet's and the kubeadm patch's", seen, deploy)
	}
	for _, k := range []string{deploy, filepath.Join(deploy, "kubeadm-overlay")} {
		resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), k)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", k, err)
		}
		for _, r := range resources.Resources() {
			if r.GetKind() != "DaemonSet" {
				continue
			}
			var ds struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct{ Image string } `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			}
			data, err := r.AsYAML()
			if err == nil {
				err = yaml.Unmarshal(data, &ds)
			}
			if err != nil || len(ds.Spec.Template.Spec.Containers) != 1 || ds.Spec.Template.Spec.Containers[0].Image != pinned {
				t.Errorf("kustomize build %s: DaemonSet %+v, %v; want its image %s", k, ds.Spec.Template.Spec.Containers, err, pinned)
			}
		}
	}
}

// TestReleasePushKeepsDigest pushes the release's image the way docs/release.md's crane
// command does (the layout's one index, remote.WriteIndex) to an in-memory registry on
// loopback, and pulls it back by the pinned reference's digest: the digest in the
// manifests is the one a registry serves.
func TestReleasePushKeepsDigest(t *testing.T) {
	dir := releaseDir(t)
	_, digest, pinned := releaseImage(t, dir)
	u := openTarball(t, filepath.Join(dir, "kube-proxy.oci.tar"))
	server := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer server.Close()
	host := strings.TrimPrefix(server.URL, "http://")
	repository := pinned[:strings.LastIndex(pinned, "@")]
	if i := strings.Index(repository, "/"); i >= 0 && strings.ContainsAny(repository[:i], ".:") {
		repository = repository[i+1:] // the registry's host is ours here
	}
	tag, err := name.NewTag(host+"/"+repository+":release-test", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, u.index); err != nil {
		t.Fatalf("push to %s: %v", tag, err)
	}
	byDigest, err := name.NewDigest(host+"/"+repository+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(byDigest)
	if err != nil {
		t.Fatalf("pull %s: %v", byDigest, err)
	}
	if got := must(pulled.Digest()).String(); got != digest {
		t.Errorf("the registry serves %s as %s", byDigest, got)
	}
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		osName, arch, _ := strings.Cut(platform, "/")
		img, err := remote.Image(byDigest, remote.WithPlatform(v1.Platform{OS: osName, Architecture: arch}))
		if err != nil || must(img.ConfigName()) != must(u.images[platform].ConfigName()) {
			t.Errorf("pull %s for %s: %v, or not the tarball's image", byDigest, platform, err)
		}
	}
}

// TestReleaseSkopeo runs docs/release.md's skopeo commands against the release tarball:
// inspect, and copy --all --preserve-digests to an in-memory registry on loopback, after
// which the registry serves the index under the release's digest.
func TestReleaseSkopeo(t *testing.T) {
	dir := releaseDir(t)
	_, digest, _ := releaseImage(t, dir)
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed (hack/release.sh installs it)")
	}
	archive := "oci-archive:" + filepath.Join(dir, "kube-proxy.oci.tar")
	out, err := exec.Command("skopeo", "inspect", "--raw", archive).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", archive, err)
	}
	if sum := sha256.Sum256(out); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Errorf("skopeo reads an index of digest sha256:%x from the tarball, image.txt says %s", sum, digest)
	}
	server := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer server.Close()
	host := strings.TrimPrefix(server.URL, "http://")
	dest := "docker://" + host + "/net/kube-proxy:release-test"
	if out, err := exec.Command("skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", archive, dest).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy %s %s: %v\n%s", archive, dest, err, out)
	}
	ref, err := name.NewDigest(host+"/net/kube-proxy@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if idx, err := remote.Index(ref); err != nil || must(idx.Digest()).String() != digest {
		t.Errorf("after skopeo copy, %s: %v", ref, err)
	}
}
