// Package spdxcheck checks an SPDX 2.3 JSON document the way the image tests need: the
// fields the specification requires, identifiers unique and well formed, every
// relationship between elements of the document, and one described root.
package spdxcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Document is what Check reads of an SPDX document.
type Document struct {
	SPDXVersion       string `json:"spdxVersion"`
	DataLicense       string `json:"dataLicense"`
	SPDXID            string `json:"SPDXID"`
	Name              string `json:"name"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages      []Package `json:"packages"`
	Relationships []struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// Package is one package of a Document.
type Package struct {
	Name             string `json:"name"`
	SPDXID           string `json:"SPDXID"`
	VersionInfo      string `json:"versionInfo"`
	DownloadLocation string `json:"downloadLocation"`
	ExternalRefs     []struct {
		ReferenceCategory string `json:"referenceCategory"`
		ReferenceType     string `json:"referenceType"`
		ReferenceLocator  string `json:"referenceLocator"`
	} `json:"externalRefs"`
}

// Purl is the package's package URL, or "".
func (p Package) Purl() string {
	for _, r := range p.ExternalRefs {
		if r.ReferenceType == "purl" {
			return r.ReferenceLocator
		}
	}
	return ""
}

var (
	idPattern      = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	createdPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	creatorPattern = regexp.MustCompile(`^(Person|Organization|Tool): .+`)
)

// Check parses data and returns it with every problem found.
func Check(data []byte) (*Document, error) {
	var doc Document
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not SPDX JSON: %w", err)
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.Name == "" {
		fail("header: spdxVersion %q, dataLicense %q, SPDXID %q, name %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXID, doc.Name)
	}
	if u, err := url.Parse(doc.DocumentNamespace); err != nil || u.Scheme == "" || strings.Contains(doc.DocumentNamespace, "#") {
		fail("documentNamespace %q is not an absolute URI without #", doc.DocumentNamespace)
	}
	if !createdPattern.MatchString(doc.CreationInfo.Created) || len(doc.CreationInfo.Creators) == 0 {
		fail("creationInfo %+v: want created YYYY-MM-DDThh:mm:ssZ and creators", doc.CreationInfo)
	}
	for _, c := range doc.CreationInfo.Creators {
		if !creatorPattern.MatchString(c) {
			fail("creator %q: want Person:, Organization: or Tool:", c)
		}
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range doc.Packages {
		if !idPattern.MatchString(p.SPDXID) || ids[p.SPDXID] {
			fail("package %q: SPDXID %q is malformed or not unique", p.Name, p.SPDXID)
		}
		ids[p.SPDXID] = true
		if p.Name == "" || p.DownloadLocation == "" {
			fail("package %s: name and downloadLocation are required", p.SPDXID)
		}
	}
	described := 0
	for _, r := range doc.Relationships {
		if !ids[r.Element] || !ids[r.Related] || r.Type == "" {
			fail("relationship %+v names an element not in the document", r)
		}
		if r.Element == "SPDXRef-DOCUMENT" && r.Type == "DESCRIBES" {
			described++
		}
	}
	if described != 1 {
		fail("the document DESCRIBES %d elements, want 1 (the image)", described)
	}
	return &doc, errors.Join(errs...)
}
