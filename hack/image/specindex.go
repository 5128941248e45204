package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The index as the OCI image-spec's Go types serialize it (json.Marshal of
// specs-go/v1.Index: a descriptor's digest before its size). containers/image (skopeo)
// serializes a list again before writing it and, with --preserve-digests, refuses one
// whose bytes would change; go-containerregistry writes the size first.
type specIndex struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType,omitempty"`
	Manifests     []specDescriptor  `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type specDescriptor struct {
	MediaType   types.MediaType   `json:"mediaType"`
	Digest      v1.Hash           `json:"digest"`
	Size        int64             `json:"size"`
	URLs        []string          `json:"urls,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *specPlatform     `json:"platform,omitempty"`
}

type specPlatform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// rawIndex is an index with its manifest bytes replaced (the same content).
type rawIndex struct {
	index v1.ImageIndex
	raw   []byte
}

func (r rawIndex) RawManifest() ([]byte, error) { return r.raw, nil }
func (r rawIndex) Size() (int64, error)         { return int64(len(r.raw)), nil }
func (r rawIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(r.raw))
	return h, err
}
func (r rawIndex) MediaType() (types.MediaType, error) { return r.index.MediaType() }
func (r rawIndex) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(r.raw))
}
func (r rawIndex) Image(h v1.Hash) (v1.Image, error)           { return r.index.Image(h) }
func (r rawIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) { return r.index.ImageIndex(h) }

// inSpecOrder returns index with its manifest serialized in the image-spec's field order.
func inSpecOrder(index v1.ImageIndex) (v1.ImageIndex, error) {
	m, err := index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index manifest: %w", err)
	}
	out := specIndex{SchemaVersion: m.SchemaVersion, MediaType: m.MediaType, Annotations: m.Annotations, Manifests: []specDescriptor{}}
	for _, d := range m.Manifests {
		sd := specDescriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, URLs: d.URLs, Annotations: d.Annotations}
		if p := d.Platform; p != nil {
			sd.Platform = &specPlatform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures, Variant: p.Variant}
		}
		out.Manifests = append(out.Manifests, sd)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return rawIndex{index: index, raw: raw}, nil
}
