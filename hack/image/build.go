package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image.
const (
	kubeProxyPath = "usr/local/bin/kube-proxy"
	doctorPath    = "usr/local/bin/ipvs-doctor"
	wrapperPath   = "usr/sbin/iptables-wrapper"
	imagePath     = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	defaultDescription = "Drop-in kube-proxy for IPVS mode that deletes a removed endpoint's real server at once (feature gate IPVSImmediateTermination); iptables legacy and nft with a backend-selecting wrapper."
)

// platformImage is one built image and the platform it is for.
type platformImage struct {
	platform v1.Platform
	image    v1.Image
	sbom     []byte // SPDX JSON, in the image at sbomPath
}

func build(opts options) error {
	var images []platformImage
	for _, p := range opts.platforms {
		img, sbomJSON, err := buildPlatform(opts, p)
		if err != nil {
			return fmt.Errorf("build %s/%s: %w", p.os, p.arch, err)
		}
		images = append(images, platformImage{platform: v1.Platform{OS: p.os, Architecture: p.arch}, image: img, sbom: sbomJSON})
	}
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pi := range images {
		platform := pi.platform
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add: pi.image, Descriptor: v1.Descriptor{Platform: &platform},
		})
	}
	index = mutate.Annotations(index, labels(opts, nil)).(v1.ImageIndex)
	specIndex, err := inSpecOrder(index)
	if err != nil {
		return err
	}
	return write(opts, specIndex, images)
}

// buildPlatform assembles one platform's image from its stage directory: a base layer
// (iptables and the wrapper when opts.iptables, and a root skeleton), then a layer with
// the binaries and the SBOM, which it returns too.
func buildPlatform(opts options, p platformStage) (v1.Image, []byte, error) {
	a, err := archFor(p.arch)
	if err != nil {
		return nil, nil, err
	}
	var base []entry
	var packages []string
	baseWhat := "root skeleton"
	if opts.iptables {
		if base, packages, err = iptablesLayer(p, a, opts.debianFiles); err != nil {
			return nil, nil, err
		}
		baseWhat = "iptables (legacy and nft) and its libraries from Debian: " + strings.Join(packages, ", ")
	} else if len(opts.debianFiles) > 0 {
		if base, packages, err = debianLayer(p, a, opts.debianFiles); err != nil {
			return nil, nil, err
		}
		baseWhat = strings.Join(opts.debianFiles, ", ") + " and their libraries from Debian: " + strings.Join(packages, ", ")
	}
	base = append(base, skeleton()...)
	var binaries []entry
	var paths []string
	for _, b := range opts.binaries {
		e, err := staticBinary(filepath.Join(p.dir, b.stageFile), b.imagePath, a)
		if err != nil {
			return nil, nil, err
		}
		binaries = append(binaries, e)
		paths = append(paths, "/"+b.imagePath)
	}
	for _, l := range opts.links {
		binaries = append(binaries, entry{path: l.imagePath, mode: fs.ModeSymlink | 0o777, link: l.target})
	}
	sbomJSON, err := sbom(opts, p, packages, sbomPrograms(opts))
	if err != nil {
		return nil, nil, err
	}
	binaries = append(binaries, entry{path: sbomPath, mode: 0o644, data: sbomJSON})

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, configFile(opts, p, packages))
	if err != nil {
		return nil, nil, fmt.Errorf("set config: %w", err)
	}
	for _, l := range []struct {
		entries []entry
		what    string
	}{
		{base, baseWhat},
		{binaries, strings.Join(paths, " and ") + ", the SBOM (" + opts.title + " " + opts.version + ", " + opts.revision + ")"},
	} {
		img, err = appendLayer(img, l.entries, l.what, opts)
		if err != nil {
			return nil, nil, err
		}
	}
	return mutate.Annotations(img, labels(opts, nil)).(v1.Image), sbomJSON, nil
}

// sbomPrograms are the image's programs for its SBOM: the binaries, and the
// iptables-wrapper with iptables.
func sbomPrograms(opts options) []sbomBinary {
	var out []sbomBinary
	for _, b := range opts.binaries {
		out = append(out, sbomBinary{imagePath: b.imagePath, stageFile: b.stageFile})
	}
	if opts.iptables {
		out = append(out, sbomBinary{imagePath: wrapperPath, stageFile: "iptables-wrapper"})
	}
	return out
}

// debianLayer is the files extra (paths in the stage's debroot/) with the libraries and
// loader they need, and the Debian packages they came from: an image's user space
// without iptables.
func debianLayer(p platformStage, a arch, extra []string) ([]entry, []string, error) {
	packages, err := readPackages(filepath.Join(p.dir, "packages.txt"))
	if err != nil {
		return nil, nil, err
	}
	base, err := debianFiles(filepath.Join(p.dir, "debroot"), a, extra)
	if err != nil {
		return nil, nil, err
	}
	return base, packages, nil
}

// iptablesLayer is iptables user space (and the extra Debian files) from the stage's
// debroot/ with the iptables-wrapper in front of it, and the Debian packages it came from.
func iptablesLayer(p platformStage, a arch, extra []string) ([]entry, []string, error) {
	packages, err := readPackages(filepath.Join(p.dir, "packages.txt"))
	if err != nil {
		return nil, nil, err
	}
	base, err := userland(filepath.Join(p.dir, "debroot"), a, extra)
	if err != nil {
		return nil, nil, err
	}
	wrapper, err := staticBinary(filepath.Join(p.dir, "iptables-wrapper"), wrapperPath, a)
	if err != nil {
		return nil, nil, err
	}
	base = append(base, wrapper)
	return append(base, wrapperLinks()...), packages, nil
}

func appendLayer(img v1.Image, entries []entry, what string, opts options) (v1.Image, error) {
	tarBytes, err := layerTar(entries, opts.created)
	if err != nil {
		return nil, err
	}
	layer, err := newLayer(tarBytes)
	if err != nil {
		return nil, err
	}
	history := v1.History{Created: v1.Time{Time: opts.created}, CreatedBy: "hack/image: " + what, Comment: "ipvs-proxy"}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: history})
	if err != nil {
		return nil, fmt.Errorf("append layer (%s): %w", what, err)
	}
	return img, nil
}

// staticBinary is an executable entry for a statically linked binary of
// the image's architecture (the image has no loader for anything else).
func staticBinary(source, imagePath string, a arch) (entry, error) {
	interp, needed, err := elfDeps(source, a.machine)
	if err != nil {
		return entry{}, fmt.Errorf("read ELF %s: %w", source, err)
	}
	if interp != "" || len(needed) > 0 {
		return entry{}, fmt.Errorf("%s is not static (loader %q, libraries %v): build with CGO_ENABLED=0", source, interp, needed)
	}
	return entry{path: imagePath, mode: 0o755, source: source}, nil
}

// wrapperLinks point the generic iptables command names at the wrapper,
// which repoints them at the host's backend on first use.
func wrapperLinks() []entry {
	var out []entry
	for _, c := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		out = append(out, entry{path: "usr/sbin/" + c, mode: fs.ModeSymlink | 0o777, link: "iptables-wrapper"})
	}
	return out
}

// skeleton is the rest of a minimal root: the root user and the
// directories programs expect (/run holds the xtables lock).
func skeleton() []entry {
	return []entry{
		{path: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/usr/sbin/nologin\n")},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\n")},
		{path: "root", mode: fs.ModeDir | 0o700},
		{path: "run", mode: fs.ModeDir | 0o755},
		{path: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

func configFile(opts options, p platformStage, packages []string) *v1.ConfigFile {
	extra := map[string]string{}
	if len(packages) > 0 {
		extra["com.github.ipvs-proxy.debian-packages"] = strings.Join(packages, ",")
	}
	return &v1.ConfigFile{
		Architecture: p.arch,
		OS:           p.os,
		Created:      v1.Time{Time: opts.created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: words(opts.entrypoint),
			Cmd:        words(opts.cmd),
			Env:        []string{imagePath},
			// kube-proxy programs IPVS, iptables and sysctls: root with
			// NET_ADMIN (the DaemonSet runs it privileged, like kubeadm's).
			User:       "0:0",
			WorkingDir: "/",
			Labels:     labels(opts, extra),
		},
	}
}

// words splits a -entrypoint or -cmd value; nil when it is empty.
func words(s string) []string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return nil
	}
	return f
}

// labels are the org.opencontainers.image.* labels (and annotations).
func labels(opts options, extra map[string]string) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       opts.title,
		"org.opencontainers.image.description": opts.description,
		"org.opencontainers.image.source":      opts.source,
		"org.opencontainers.image.revision":    opts.revision,
		"org.opencontainers.image.version":     opts.version,
		"org.opencontainers.image.created":     opts.created.Format("2006-01-02T15:04:05Z"),
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// readPackages reads "name version" lines into "name=version" strings.
func readPackages(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read package list: %w", err)
	}
	defer f.Close()
	var out []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 2 {
			out = append(out, fields[0]+"="+fields[1])
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read package list %s: %w", file, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("package list %s is empty", file)
	}
	return out, nil
}
