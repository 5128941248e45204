// Command image builds the ipvs-proxy kube-proxy container image without a
// container daemon: one image per platform (a layer of iptables user space
// taken from Debian packages, a layer with the static kube-proxy and
// ipvs-doctor binaries),
// joined in a multi-platform index, written as an OCI image layout directory
// and as one tarball that docker load, ctr import and podman load accept.
//
// hack/image.sh prepares a stage directory per platform and runs it:
//
//	image -image ipvs-proxy/kube-proxy:dev -platform linux/amd64=STAGE ... \
//	      -oci-dir DIR -out FILE.tar -revision SHA -version V -created RFC3339
//
// A stage directory holds debroot/ (the Debian packages extracted with
// dpkg-deb -x), kube-proxy, ipvs-doctor and iptables-wrapper (static binaries) and
// packages.txt ("name version" lines, recorded in a label and the SBOM).
//
// Every image holds an SPDX 2.3 SBOM at /usr/share/doc/ipvs-proxy/sbom.spdx.json (its Debian
// packages, its programs and the Go modules each is built from), also written beside the
// tarball per platform (FILE.linux-amd64.spdx.json for FILE.oci.tar).
//
// The same builder makes the other images the cluster needs (hack/cluster/images.sh):
// -binary chooses the static binaries and where they go, -entrypoint the command,
// -iptables=false leaves out the Debian layer and the wrapper (a pause or test-server
// image is one binary and a root skeleton), -title and -description the labels.
// hack/conformance/images.sh's e2e images add -link (symlinks: busybox's applets),
// -cmd (the image's default arguments) and -debian-file with -iptables=false (Debian
// programs such as curl with the libraries they need, without iptables).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	image     string
	platforms []platformStage
	ociDir    string
	out       string
	revision  string
	version   string
	source    string
	created   time.Time
	// What the image holds and runs.
	binaries    []binarySpec
	links       []linkSpec
	entrypoint  string // words separated by spaces; empty: no entrypoint
	cmd         string // words separated by spaces; empty: no default arguments
	iptables    bool
	debianFiles []string // more files from debroot/ for the iptables layer
	title       string
	description string
	distro      string // the Debian packages' distribution for their package URLs (debian-12)
}

// binarySpec is one -binary flag: "IMAGE_PATH=STAGE_FILE", a static binary of the
// stage directory placed at IMAGE_PATH (no leading slash) in the image.
type binarySpec struct {
	imagePath, stageFile string
}

// linkSpec is one -link flag: "IMAGE_PATH=TARGET", a symlink at IMAGE_PATH (no leading
// slash) in the binaries layer pointing at TARGET (absolute or relative).
type linkSpec struct {
	imagePath, target string
}

// defaultBinaries are ipvs-proxy's image's: kube-proxy and ipvs-doctor.
var defaultBinaries = []string{kubeProxyPath + "=kube-proxy", doctorPath + "=ipvs-doctor"}

// platformStage is one -platform flag: "linux/ARCH=DIR".
type platformStage struct {
	os, arch, dir string
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(2)
	}
	if err := build(opts); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var opts options
	var platforms, binaries, debianFiles, links multiFlag
	var created string
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.StringVar(&opts.image, "image", "ipvs-proxy/kube-proxy:dev", "image reference (repository:tag) recorded in the tarball")
	fs.Var(&platforms, "platform", "os/arch=stage-dir, once per platform")
	fs.StringVar(&opts.ociDir, "oci-dir", "", "OCI image layout directory to (re)write")
	fs.StringVar(&opts.out, "out", "", "tarball to write (the layout plus a docker manifest.json)")
	fs.StringVar(&opts.revision, "revision", "unknown", "source revision (label)")
	fs.StringVar(&opts.version, "version", "dev", "version (label)")
	fs.StringVar(&opts.source, "source", "https://github.com/ipvs-proxy/ipvs-proxy", "source repository (label)")
	fs.StringVar(&created, "created", "1970-01-01T00:00:00Z", "creation time, RFC 3339 (every file time too)")
	fs.Var(&binaries, "binary", "image-path=stage-file: a static binary to add, repeatable (default: kube-proxy and ipvs-doctor)")
	fs.StringVar(&opts.entrypoint, "entrypoint", "/"+kubeProxyPath, "the image's entrypoint, words separated by spaces (empty: none)")
	fs.StringVar(&opts.cmd, "cmd", "", "the image's default arguments (Cmd), words separated by spaces")
	fs.Var(&links, "link", "image-path=target: a symlink to add with the binaries, repeatable")
	fs.BoolVar(&opts.iptables, "iptables", true, "add iptables from the stage's debroot/ and the iptables-wrapper")
	fs.Var(&debianFiles, "debian-file", "path in debroot/ (usr/sbin/ipset) to add with its libraries to the iptables layer (with -iptables=false: to a Debian layer of its own), repeatable")
	fs.StringVar(&opts.title, "title", "ipvs-proxy kube-proxy", "org.opencontainers.image.title")
	fs.StringVar(&opts.description, "description", defaultDescription, "org.opencontainers.image.description")
	fs.StringVar(&opts.distro, "distro", "", "the Debian packages' distribution in the SBOM's package URLs (debian-12)")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return opts, fmt.Errorf("-created %q: %w", created, err)
	}
	opts.created = t.UTC()
	for _, p := range platforms {
		stage, err := parsePlatform(p)
		if err != nil {
			return opts, err
		}
		opts.platforms = append(opts.platforms, stage)
	}
	if len(opts.platforms) == 0 || opts.ociDir == "" || opts.out == "" {
		return opts, errors.New("-platform, -oci-dir and -out are required")
	}
	opts.debianFiles = debianFiles
	if len(binaries) == 0 {
		binaries = defaultBinaries
	}
	for _, b := range binaries {
		imagePath, stageFile, ok := strings.Cut(b, "=")
		if !ok || imagePath == "" || stageFile == "" || strings.HasPrefix(imagePath, "/") {
			return opts, fmt.Errorf("-binary %q: want IMAGE_PATH=STAGE_FILE, IMAGE_PATH without a leading /", b)
		}
		opts.binaries = append(opts.binaries, binarySpec{imagePath: imagePath, stageFile: stageFile})
	}
	for _, l := range links {
		imagePath, target, ok := strings.Cut(l, "=")
		if !ok || imagePath == "" || target == "" || strings.HasPrefix(imagePath, "/") {
			return opts, fmt.Errorf("-link %q: want IMAGE_PATH=TARGET, IMAGE_PATH without a leading /", l)
		}
		opts.links = append(opts.links, linkSpec{imagePath: imagePath, target: target})
	}
	return opts, nil
}

func parsePlatform(s string) (platformStage, error) {
	spec, dir, ok := strings.Cut(s, "=")
	osName, arch, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 || dir == "" || osName != "linux" {
		return platformStage{}, fmt.Errorf("-platform %q: want linux/ARCH=STAGE_DIR", s)
	}
	return platformStage{os: osName, arch: arch, dir: dir}, nil
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
