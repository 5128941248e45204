package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
)

// sbomPath is where every image the builder makes holds its SBOM.
const sbomPath = "usr/share/doc/ipvs-proxy/sbom.spdx.json"

// ourModule is ipvs-proxy's Go module: its binaries get the -version flag's version.
const ourModule = "github.com/ipvs-proxy/ipvs-proxy"

// The SPDX 2.3 JSON document (https://spdx.github.io/spdx-spec/v2.3/), the fields we fill.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string            `json:"name"`
	SPDXID                string            `json:"SPDXID"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	Supplier              string            `json:"supplier,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	LicenseDeclared       string            `json:"licenseDeclared,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// sbomBinary is a program of the image, read from the stage directory.
type sbomBinary struct {
	imagePath, stageFile string
}

// sbomBuilder collects packages and relationships with unique SPDX identifiers.
type sbomBuilder struct {
	doc spdxDocument
	ids map[string]bool
	// goModules maps path@version to its package's SPDXID (binaries share modules).
	goModules map[string]string
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// id returns a new SPDXRef- identifier made from parts.
func (b *sbomBuilder) id(parts ...string) string {
	base := "SPDXRef-" + strings.Trim(spdxIDUnsafe.ReplaceAllString(strings.Join(parts, "-"), "-"), "-")
	id := base
	for n := 2; b.ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	b.ids[id] = true
	return id
}

func (b *sbomBuilder) add(p spdxPackage, parent, relationship string) string {
	if p.DownloadLocation == "" {
		p.DownloadLocation = noAssertion
	}
	b.doc.Packages = append(b.doc.Packages, p)
	b.relate(parent, relationship, p.SPDXID)
	return p.SPDXID
}

func (b *sbomBuilder) relate(element, relationship, related string) {
	b.doc.Relationships = append(b.doc.Relationships, spdxRelationship{Element: element, Type: relationship, Related: related})
}

// sbom is the SPDX 2.3 JSON of one platform's image: the image, its Debian packages
// ("name=version", from the stage's packages.txt) and its programs with the Go modules
// each is built from (their Go build information, as `go version -m` prints it).
func sbom(opts options, p platformStage, debs []string, binaries []sbomBinary) ([]byte, error) {
	b := &sbomBuilder{ids: map[string]bool{"SPDXRef-DOCUMENT": true}, goModules: map[string]string{}}
	b.doc = spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: fmt.Sprintf("%s %s %s/%s", opts.image, opts.version, p.os, p.arch),
		CreationInfo: spdxCreationInfo{
			Created:  opts.created.Format("2006-01-02T15:04:05Z"),
			Creators: []string{"Organization: ipvs-proxy", "Tool: ipvs-proxy-hack-image"},
		},
	}
	image := b.add(spdxPackage{
		Name: opts.image, SPDXID: b.id("Image", p.arch), VersionInfo: opts.version, Supplier: "Organization: ipvs-proxy",
		PrimaryPackagePurpose: "CONTAINER", Comment: opts.title + " for " + p.os + "/" + p.arch + ", source revision " + opts.revision,
	}, "SPDXRef-DOCUMENT", "DESCRIBES")
	for _, d := range debs {
		name, version, _ := strings.Cut(d, "=")
		purl := "pkg:deb/debian/" + name + "@" + purlVersion(version) + "?arch=" + p.arch
		if opts.distro != "" {
			purl += "&distro=" + opts.distro
		}
		b.add(spdxPackage{
			Name: name, SPDXID: b.id("deb", name, p.arch), VersionInfo: version, Supplier: "Organization: Debian",
			ExternalRefs: []spdxExternalRef{{"PACKAGE-MANAGER", "purl", purl}},
		}, image, "CONTAINS")
	}
	for _, bin := range binaries {
		if err := b.addBinary(opts, image, filepath.Join(p.dir, bin.stageFile), bin.imagePath); err != nil {
			return nil, err
		}
	}
	body, err := json.MarshalIndent(&b.doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode SBOM: %w", err)
	}
	// A document's namespace is unique to its content.
	sum := sha256.Sum256(body)
	b.doc.DocumentNamespace = "https://github.com/ipvs-proxy/ipvs-proxy/spdx/" + url.PathEscape(spdxIDUnsafe.ReplaceAllString(opts.image, "-")) +
		"/" + url.PathEscape(opts.version) + "/" + p.os + "-" + p.arch + "-" + hex.EncodeToString(sum[:8])
	if body, err = json.MarshalIndent(&b.doc, "", "  "); err != nil {
		return nil, fmt.Errorf("encode SBOM: %w", err)
	}
	return append(body, '\n'), nil
}

// addBinary adds the program at imagePath (read from source): with its Go modules and
// toolchain when it is a Go binary.
func (b *sbomBuilder) addBinary(opts options, image, source, imagePath string) error {
	program := spdxPackage{Name: path.Base(imagePath), SPDXID: b.id("binary", imagePath), PrimaryPackagePurpose: "APPLICATION",
		Comment: "/" + imagePath}
	bi, err := buildinfo.ReadFile(source)
	if err != nil {
		program.Comment += ": no Go build information"
		b.add(program, image, "CONTAINS")
		return nil
	}
	program.VersionInfo = bi.Main.Version
	if bi.Main.Path == ourModule {
		program.VersionInfo, program.Supplier, program.LicenseDeclared = opts.version, "Organization: ipvs-proxy", "Apache-2.0"
	}
	if program.VersionInfo == "" || program.VersionInfo == "(devel)" {
		program.VersionInfo = noAssertion
	}
	program.Comment += " (Go module " + bi.Main.Path + ", " + bi.GoVersion + ")"
	id := b.add(program, image, "CONTAINS")
	b.relate(id, "DEPENDS_ON", b.goModule("stdlib", strings.TrimPrefix(bi.GoVersion, "go")))
	deps := append([]*debug.Module(nil), bi.Deps...)
	sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
	for _, m := range deps {
		if m.Replace != nil {
			m = m.Replace
		}
		b.relate(id, "DEPENDS_ON", b.goModule(m.Path, m.Version))
	}
	return nil
}

// goModule returns the SPDXID of the Go module path@version, adding it once.
func (b *sbomBuilder) goModule(modPath, version string) string {
	key := modPath + "@" + version
	if id, ok := b.goModules[key]; ok {
		return id
	}
	p := spdxPackage{Name: modPath, SPDXID: b.id("go", modPath, version), VersionInfo: version, DownloadLocation: noAssertion,
		ExternalRefs: []spdxExternalRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + modPath + "@" + purlVersion(version)}}}
	if version == "" {
		p.VersionInfo = noAssertion
	}
	b.doc.Packages = append(b.doc.Packages, p)
	b.goModules[key] = p.SPDXID
	return p.SPDXID
}

// purlVersion percent-encodes a version for a package URL (an epoch's ":" too).
func purlVersion(v string) string {
	return strings.ReplaceAll(url.PathEscape(v), ":", "%3A")
}

// sbomFile is where the SBOM of a platform goes beside the tarball:
// kube-proxy.oci.tar -> kube-proxy.linux-amd64.spdx.json.
func sbomFile(out string, p platformStage) string {
	base := strings.TrimSuffix(strings.TrimSuffix(out, ".tar"), ".oci")
	return base + "." + p.os + "-" + p.arch + ".spdx.json"
}
