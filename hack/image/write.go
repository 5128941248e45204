package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Annotation keys on index.json's descriptor that name the image on import.
const (
	annotationRefName       = "org.opencontainers.image.ref.name" // podman load, skopeo
	annotationContainerName = "io.containerd.image.name"          // ctr import, docker (containerd store)
)

// dockerManifestEntry is one entry of a docker save manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// write writes the OCI layout (index.json naming the multi-platform index),
// adds a docker manifest.json for docker load's classic store, and packs the
// directory into the tarball. Prints the summary line hack/image.sh reports.
func write(opts options, index v1.ImageIndex, images []platformImage) error {
	ref, err := fullReference(opts.image)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(opts.ociDir); err != nil {
		return fmt.Errorf("clean %s: %w", opts.ociDir, err)
	}
	lp, err := layout.Write(opts.ociDir, empty.Index)
	if err != nil {
		return fmt.Errorf("create OCI layout %s: %w", opts.ociDir, err)
	}
	names := map[string]string{annotationRefName: ref, annotationContainerName: ref}
	if err := lp.AppendIndex(index, layout.WithAnnotations(names)); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", opts.ociDir, err)
	}
	manifest, err := dockerManifest(opts.image, images)
	if err != nil {
		return err
	}
	if err := lp.WriteFile("manifest.json", manifest, 0o644); err != nil {
		return fmt.Errorf("write manifest.json: %w", err)
	}
	if err := packDir(opts.ociDir, opts.out, opts.created); err != nil {
		return err
	}
	for _, pi := range images {
		file := sbomFile(opts.out, platformStage{os: pi.platform.OS, arch: pi.platform.Architecture})
		if err := os.WriteFile(file, pi.sbom, 0o644); err != nil {
			return fmt.Errorf("write SBOM: %w", err)
		}
	}
	return printSummary(opts, ref, index)
}

// fullReference is the image name as containerd stores it:
// registry/repository:tag with docker.io for Docker Hub.
func fullReference(image string) (string, error) {
	tag, err := name.NewTag(image, name.WithDefaultRegistry("docker.io"))
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", image, err)
	}
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}

// dockerManifest lists every platform's image for docker load's classic
// store, which reads manifest.json and knows no index: the first platform
// gets the plain tag, and each platform a tag suffixed with its
// architecture (repository:tag-arm64).
func dockerManifest(image string, images []platformImage) ([]byte, error) {
	var entries []dockerManifestEntry
	for i, pi := range images {
		cfg, err := pi.image.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("config digest of %s: %w", pi.platform.Architecture, err)
		}
		layers, err := pi.image.Layers()
		if err != nil {
			return nil, fmt.Errorf("layers of %s: %w", pi.platform.Architecture, err)
		}
		e := dockerManifestEntry{Config: blobPath(cfg)}
		if i == 0 {
			e.RepoTags = append(e.RepoTags, image)
		}
		e.RepoTags = append(e.RepoTags, image+"-"+pi.platform.Architecture)
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, fmt.Errorf("layer digest of %s: %w", pi.platform.Architecture, err)
			}
			e.Layers = append(e.Layers, blobPath(d))
		}
		entries = append(entries, e)
	}
	return json.MarshalIndent(entries, "", "  ")
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// packDir writes dir as a tar file: oci-layout, index.json and manifest.json
// first, then the blobs, sorted, with fixed times and owners.
func packDir(dir, out string, mtime time.Time) error {
	files, err := listFiles(dir)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, rel := range files {
		if err := packFile(tw, dir, rel, mtime); err != nil {
			f.Close()
			return fmt.Errorf("pack %s into %s: %w", rel, out, err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("close %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// listFiles lists the directories and files under dir, metadata files first.
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	rank := func(p string) int {
		if strings.HasPrefix(p, "blobs") {
			return 1
		}
		return 0
	}
	sort.Slice(files, func(i, j int) bool {
		if rank(files[i]) != rank(files[j]) {
			return rank(files[i]) < rank(files[j])
		}
		return files[i] < files[j]
	})
	return files, nil
}

func packFile(tw *tar.Writer, dir, rel string, mtime time.Time) error {
	full := filepath.Join(dir, rel)
	info, err := os.Stat(full)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: rel, ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
	if info.IsDir() {
		hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = rel+"/", 0o755, tar.TypeDir, 0
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if info.IsDir() {
		return nil
	}
	src, err := os.Open(full)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = io.Copy(tw, src)
	return err
}

func printSummary(opts options, ref string, index v1.ImageIndex) error {
	digest, err := index.Digest()
	if err != nil {
		return fmt.Errorf("index digest: %w", err)
	}
	info, err := os.Stat(opts.out)
	if err != nil {
		return err
	}
	fmt.Printf("image %s\nindex digest %s\ntarball %s (%d bytes)\n", ref, digest, opts.out, info.Size())
	manifest, err := index.IndexManifest()
	if err != nil {
		return fmt.Errorf("index manifest: %w", err)
	}
	for _, m := range manifest.Manifests {
		img, err := index.Image(m.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", m.Digest, err)
		}
		compressed, err := layersSize(img)
		if err != nil {
			return err
		}
		fmt.Printf("  %s/%s manifest %s, layers %.1f MB compressed, SBOM %s\n", m.Platform.OS, m.Platform.Architecture, m.Digest,
			float64(compressed)/1e6, sbomFile(opts.out, platformStage{os: m.Platform.OS, arch: m.Platform.Architecture}))
	}
	return nil
}

// layersSize is the sum of an image's compressed layer sizes (what a pull downloads).
func layersSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, fmt.Errorf("layers: %w", err)
	}
	var total int64
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			return 0, fmt.Errorf("layer size: %w", err)
		}
		total += size
	}
	return total, nil
}
