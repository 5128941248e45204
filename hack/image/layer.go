package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerTar writes entries as a tar stream, sorted, each missing parent
// directory added (0755), owned by root, every time set to mtime: the same
// inputs give the same bytes.
func layerTar(entries []entry, mtime time.Time) ([]byte, error) {
	all := withParents(entries)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range all {
		if err := writeEntry(tw, e, mtime); err != nil {
			return nil, fmt.Errorf("layer entry /%s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// withParents returns entries plus a directory entry for every parent not
// already listed, sorted by path.
func withParents(entries []entry) []entry {
	byPath := map[string]entry{}
	for _, e := range entries {
		byPath[e.path] = e
		for dir := path.Dir(e.path); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = entry{path: dir, mode: fs.ModeDir | 0o755}
			}
		}
	}
	out := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	hdr := &tar.Header{
		Name: e.path, Mode: int64(e.mode.Perm()), ModTime: mtime,
		Uid: 0, Gid: 0, Uname: "root", Gname: "root", Format: tar.FormatPAX,
	}
	if e.mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	var content []byte
	switch {
	case e.mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.path+"/"
	case e.mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
	default:
		hdr.Typeflag = tar.TypeReg
		data, err := e.content()
		if err != nil {
			return err
		}
		content, hdr.Size = data, int64(len(data))
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

// content is a regular entry's bytes: generated, or read from its source.
func (e entry) content() ([]byte, error) {
	if e.source == "" {
		return e.data, nil
	}
	data, err := os.ReadFile(e.source)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", e.source, err)
	}
	return data, nil
}

// newLayer turns an uncompressed tar into an OCI gzip layer.
func newLayer(tarBytes []byte) (v1.Layer, error) {
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil }
	layer, err := tarball.LayerFromOpener(opener,
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, fmt.Errorf("make layer: %w", err)
	}
	return layer, nil
}
