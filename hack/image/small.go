package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The "small" mode builds a one-layer, one-platform image from a few files
// (static binaries, symlinks), for the cluster's helper images (pause, a
// busybox server) that need no Debian user space:
//
//	image small -image registry.k8s.io/pause:3.10 -file pause=/path/to/pause \
//	      -entrypoint /pause -oci-dir DIR -out FILE.tar
//
// It shares the layer and OCI/tarball writers with the kube-proxy image.
// Selected in init so that main's flags stay those of the kube-proxy image.
func init() {
	if len(os.Args) < 2 || os.Args[1] != "small" {
		return
	}
	if err := buildSmall(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "image small: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// buildSmall parses the small mode's flags and writes the image.
func buildSmall(args []string) error {
	var files, links multiFlag
	var entrypoint, created, arch string
	var opts options
	flags := flag.NewFlagSet("image small", flag.ContinueOnError)
	flags.StringVar(&opts.image, "image", "", "image reference (repository:tag)")
	flags.Var(&files, "file", "PATH=SOURCE: a static executable at PATH in the image (repeatable)")
	flags.Var(&links, "link", "PATH=TARGET: a symlink (repeatable)")
	flags.StringVar(&entrypoint, "entrypoint", "", "entrypoint, words separated by spaces")
	flags.StringVar(&arch, "arch", "amd64", "GOARCH of the binaries")
	flags.StringVar(&opts.ociDir, "oci-dir", "", "OCI image layout directory to (re)write")
	flags.StringVar(&opts.out, "out", "", "tarball to write")
	flags.StringVar(&created, "created", "1970-01-01T00:00:00Z", "creation time, RFC 3339")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if opts.image == "" || len(files) == 0 || entrypoint == "" || opts.ociDir == "" || opts.out == "" {
		return fmt.Errorf("-image, -file, -entrypoint, -oci-dir and -out are required")
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return fmt.Errorf("-created %q: %w", created, err)
	}
	opts.created = t.UTC()
	a, err := archFor(arch)
	if err != nil {
		return err
	}
	entries, err := smallEntries(files, links, a)
	if err != nil {
		return err
	}
	img, err := smallImage(opts, entries, strings.Fields(entrypoint), arch)
	if err != nil {
		return err
	}
	platform := v1.Platform{OS: "linux", Architecture: arch}
	index := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
	return write(opts, index, []platformImage{{platform: platform, image: img}})
}

// smallEntries turns -file and -link flags into layer entries (files must be static).
func smallEntries(files, links []string, a arch) ([]entry, error) {
	var out []entry
	for _, f := range files {
		p, src, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("-file %q: want PATH=SOURCE", f)
		}
		e, err := staticBinary(src, strings.TrimPrefix(p, "/"), a)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	for _, l := range links {
		p, target, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("-link %q: want PATH=TARGET", l)
		}
		out = append(out, entry{path: strings.TrimPrefix(p, "/"), mode: fs.ModeSymlink | 0o777, link: target})
	}
	return append(out, skeleton()...), nil
}

// smallImage is an OCI image of one layer holding entries.
func smallImage(opts options, entries []entry, entrypoint []string, arch string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch, OS: "linux", Created: v1.Time{Time: opts.created},
		RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Entrypoint: entrypoint, Env: []string{imagePath}, User: "0:0", WorkingDir: "/"},
	})
	if err != nil {
		return nil, fmt.Errorf("set config of %s: %w", opts.image, err)
	}
	return appendLayer(img, entries, "files of "+opts.image, opts)
}
