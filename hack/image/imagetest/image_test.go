package imagetest

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// unpacked is the tarball extracted into a directory, read as an OCI layout.
type unpacked struct {
	tarball string
	dir     string
	index   v1.ImageIndex // the multi-platform index named by index.json
	ref     string        // the name index.json gives it
	images  map[string]v1.Image
}

func open(t *testing.T) *unpacked {
	t.Helper()
	path := os.Getenv("IMAGE_TARBALL")
	if path == "" {
		t.Skip("IMAGE_TARBALL is not set; run hack/test-image.sh")
	}
	return openTarball(t, path)
}

// openTarball reads the image tarball at path (one multi-platform index).
func openTarball(t *testing.T, path string) *unpacked {
	t.Helper()
	dir := t.TempDir()
	untar(t, path, dir)
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read %s as an OCI layout: %v", path, err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil || len(topManifest.Manifests) != 1 {
		t.Fatalf("index.json of %s = %+v, %v; want one descriptor", path, topManifest, err)
	}
	desc := topManifest.Manifests[0]
	if desc.MediaType != types.OCIImageIndex {
		t.Fatalf("index.json names a %s, want an OCI image index", desc.MediaType)
	}
	index, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatalf("read index %s: %v", desc.Digest, err)
	}
	u := &unpacked{tarball: path, dir: dir, index: index, ref: desc.Annotations["org.opencontainers.image.ref.name"], images: map[string]v1.Image{}}
	if got := desc.Annotations["io.containerd.image.name"]; got != u.ref || u.ref == "" {
		t.Errorf("index.json names: ref.name %q, io.containerd.image.name %q; want both the same full reference", u.ref, got)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatalf("read index %s: %v", desc.Digest, err)
	}
	for _, m := range manifest.Manifests {
		img, err := index.Image(m.Digest)
		if err != nil {
			t.Fatalf("read image %s: %v", m.Digest, err)
		}
		u.images[m.Platform.OS+"/"+m.Platform.Architecture] = img
	}
	return u
}

// untar extracts a tarball of plain files and directories (the layout).
func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFile(target, tr, 0o644)
		default:
			t.Fatalf("%s: entry %s has type %c; the layout holds files and directories only", file, hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatalf("extract %s: %v", hdr.Name, err)
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func wantPlatforms() []string {
	if p := os.Getenv("IMAGE_PLATFORMS"); p != "" {
		return strings.Fields(p)
	}
	return []string{"linux/amd64", "linux/arm64"}
}

func TestIndexHasEveryPlatform(t *testing.T) {
	u := open(t)
	if err := validate.Index(u.index); err != nil {
		t.Errorf("index does not validate (digests, sizes, media types, platforms): %v", err)
	}
	var got []string
	for p := range u.images {
		got = append(got, p)
	}
	slices.Sort(got)
	want := wantPlatforms()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("platforms = %v, want %v", got, want)
	}
	if want := os.Getenv("IMAGE_REF"); want != "" && u.ref != want {
		t.Errorf("index.json names the image %q, want %q", u.ref, want)
	}
	t.Logf("%s: %s", u.ref, must(u.index.Digest()))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestImageConfig(t *testing.T) {
	u := open(t)
	for platform, img := range u.images {
		t.Run(platform, func(t *testing.T) {
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			if got := cfg.OS + "/" + cfg.Architecture; got != platform {
				t.Errorf("config platform = %s, want %s", got, platform)
			}
			if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/kube-proxy"}) {
				t.Errorf("entrypoint = %q, want [/usr/local/bin/kube-proxy]", cfg.Config.Entrypoint)
			}
			if cfg.Config.User != "0:0" {
				t.Errorf("user = %q, want 0:0 (root: kube-proxy needs NET_ADMIN)", cfg.Config.User)
			}
			for _, key := range []string{"title", "description", "source", "revision", "version", "created"} {
				if cfg.Config.Labels["org.opencontainers.image."+key] == "" {
					t.Errorf("label org.opencontainers.image.%s is missing", key)
				}
			}
			// hack/test-image.sh passes the stamp hack/image.sh built with (hack/lib.sh version_vars).
			for key, env := range map[string]string{"version": "IPVS_PROXY_VERSION", "revision": "GIT_COMMIT", "created": "BUILD_DATE"} {
				if want := os.Getenv(env); want != "" && cfg.Config.Labels["org.opencontainers.image."+key] != want {
					t.Errorf("label org.opencontainers.image.%s = %q, want %q ($%s)", key, cfg.Config.Labels["org.opencontainers.image."+key], want, env)
				}
			}
			if !strings.Contains(cfg.Config.Labels["com.github.ipvs-proxy.debian-packages"], "iptables=") {
				t.Errorf("label com.github.ipvs-proxy.debian-packages = %q, want the iptables version in it",
					cfg.Config.Labels["com.github.ipvs-proxy.debian-packages"])
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 2 {
				t.Errorf("layers = %d, %v; want 2 (iptables user space, kube-proxy and ipvs-doctor)", len(layers), err)
			}
		})
	}
}

// TestDockerManifest loads the tarball the way docker's classic store does
// (manifest.json, RepoTags) and compares with the layout's images.
func TestDockerManifest(t *testing.T) {
	u := open(t)
	data, err := os.ReadFile(filepath.Join(u.dir, "manifest.json"))
	if err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(data, &entries); err != nil || len(entries) != len(u.images) {
		t.Fatalf("manifest.json = %d entries, %v; want one per platform (%d)", len(entries), err, len(u.images))
	}
	for _, e := range entries {
		for _, repoTag := range e.RepoTags {
			tag, err := name.NewTag(repoTag)
			if err != nil {
				t.Fatalf("manifest.json RepoTag %q: %v", repoTag, err)
			}
			img, err := tarball.ImageFromPath(u.tarball, &tag)
			if err != nil {
				t.Fatalf("load %s from %s as docker load would: %v", repoTag, u.tarball, err)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("%s from manifest.json does not validate: %v", repoTag, err)
			}
			cfg := must(img.ConfigFile())
			want := u.images[cfg.OS+"/"+cfg.Architecture]
			if want == nil || must(img.ConfigName()) != must(want.ConfigName()) {
				t.Errorf("%s (%s/%s) has config %s, not the layout's image of that platform", repoTag, cfg.OS, cfg.Architecture, must(img.ConfigName()))
			}
		}
	}
}

// extractRootfs unpacks an image's flattened file system.
func extractRootfs(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return root
		}
		if err != nil {
			t.Fatalf("read root file system: %v", err)
		}
		target := filepath.Join(root, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, os.FileMode(hdr.Mode).Perm())
		case tar.TypeReg:
			err = writeFile(target, tr, os.FileMode(hdr.Mode).Perm())
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				err = os.Symlink(hdr.Linkname, target)
			}
		default:
			t.Fatalf("root file system entry %s has unexpected type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatalf("extract /%s: %v", hdr.Name, err)
		}
	}
}
