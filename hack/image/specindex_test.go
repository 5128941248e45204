package main

import (
	"bytes"
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestIndexSurvivesSpecRoundTrip: the index's bytes are what the image-spec's Go types
// write back after reading them, as skopeo copy --preserve-digests does before pushing
// (with go-containerregistry's own serialization, Debian's skopeo 1.9.3 refused:
// "Manifest list must be converted ... but we cannot modify it").
func TestIndexSurvivesSpecRoundTrip(t *testing.T) {
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		index = mutate.AppendManifests(index, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	index = mutate.Annotations(index, map[string]string{"org.opencontainers.image.version": "v0.1.0"}).(v1.ImageIndex)
	got, err := inSpecOrder(index)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := got.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	var spec imagespec.Index
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(spec)
	if err != nil || !bytes.Equal(again, raw) {
		t.Errorf("the image-spec types write the index back differently:\n%s\n%s", raw, again)
	}
	want, _ := index.IndexManifest()
	have, _ := got.IndexManifest()
	if len(have.Manifests) != 2 || have.Manifests[0].Digest != want.Manifests[0].Digest {
		t.Errorf("content changed: %+v", have)
	}
	if d, _ := got.Digest(); d == (v1.Hash{}) || d == must(index.Digest()) {
		t.Errorf("digest %v: want the digest of the new bytes", d)
	}
	// go-containerregistry's own bytes do not survive the round trip (why inSpecOrder exists)
	orig, _ := index.RawManifest()
	var spec2 imagespec.Index
	_ = json.Unmarshal(orig, &spec2)
	if back, _ := json.Marshal(spec2); bytes.Equal(back, orig) {
		t.Log("go-containerregistry now writes the image-spec's order; inSpecOrder could go")
	}
}

func must(h v1.Hash, err error) v1.Hash {
	if err != nil {
		panic(err)
	}
	return h
}
