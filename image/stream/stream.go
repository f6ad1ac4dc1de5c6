// Package stream is the streamed form of an image (buildImage { stream =
// true; }, ociTools.streamImage): the layout holds the manifest and config
// as usual, but not the layers the builder made from the store; stream.json
// records, for each of them, what made it (store paths, generated entries,
// perms, compression) and what it must come out as (digest, size, diff_id).
// Registered as an image/layout BlobSource, it makes those layers again when
// a reader (push, copy, archive, unpack, validate) asks for one: into a
// private temporary file, checked against the recorded digest before a byte
// is handed out, so a layer that comes out different is an error naming
// the layer, never a blob a registry refuses halfway.
package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/compress"
	"github.com/ocitools/ocitools/image/layer"
	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/internal/readfile"
)

// File is the record's name in the layout directory.
const File = "stream.json"

// Version is the record format's version.
const Version = 1

// MaxRecordSize bounds stream.json (a closure of 10,000 paths is about 1 MiB).
const MaxRecordSize = 16 << 20

// Record is stream.json.
type Record struct {
	Version int `json:"version"`
	// Generator names what wrote the layers (ocitools' layer format and its
	// compressors' versions): only quoted in errors, to tell why a layer
	// came out different.
	Generator string  `json:"generator"`
	Layers    []Layer `json:"layers"`
}

// Layer is everything needed to make one layer again, and what it must be.
type Layer struct {
	MediaType   string        `json:"mediaType"`
	Digest      digest.Digest `json:"digest"`
	Size        int64         `json:"size"`
	DiffID      digest.Digest `json:"diffID"`
	Compression string        `json:"compression"`
	// Spec is the layer.Spec the builder wrote (every field that changes
	// the bytes), with Root "" (the store paths are read from the real store,
	// or StoreRoot) and its perms in Perms.
	Spec  layer.Spec `json:"spec"`
	Perms []Perm     `json:"perms,omitempty"`
}

// Perm is a layer.Perm with its pattern as text (layer.Perm keeps it
// compiled, out of JSON).
type Perm struct {
	layer.Perm
	Regex string `json:"regex,omitempty"`
	Glob  string `json:"glob,omitempty"`
}

// FromSpec records a layer the builder made from s.
func FromSpec(s layer.Spec, alg compress.Algorithm, res compress.Result) Layer {
	s.Root = ""
	var perms []Perm
	for _, p := range s.Perms {
		rp := Perm{Perm: layer.Perm{Path: p.Path, Mode: p.Mode, UID: p.UID, GID: p.GID, Recursive: p.Recursive}, Glob: p.Glob}
		if p.Regex != nil {
			rp.Regex = p.Regex.String()
		}
		perms = append(perms, rp)
	}
	s.Perms = nil
	return Layer{MediaType: res.MediaType, Digest: res.Digest, Size: res.Size, DiffID: res.DiffID, Compression: string(alg), Spec: s, Perms: perms}
}

// spec is the layer.Spec that makes l again, reading the store under root.
func (l *Layer) spec(root string) (layer.Spec, error) {
	s := l.Spec
	s.Root = root
	s.Perms = nil
	for _, p := range l.Perms {
		lp := p.Perm
		lp.Glob = p.Glob
		if p.Regex != "" {
			re, err := regexp.Compile(p.Regex)
			if err != nil {
				return s, fmt.Errorf("perms: regex %q: %w", p.Regex, err)
			}
			lp.Regex = re
		}
		if lp.Regex != nil || lp.Glob != "" {
			lp.Hits = new(atomic.Int64)
		}
		s.Perms = append(s.Perms, lp)
	}
	return s, nil
}

// Generator describes this program's layer writer.
func Generator() string {
	parts := []string{"ocitools-layer/1", runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if strings.HasPrefix(m.Path, "github.com/klauspost/") {
				parts = append(parts, m.Path+"@"+m.Version)
			}
		}
	}
	return strings.Join(parts, " ")
}

// Write writes dir/stream.json.
func Write(dir string, rec Record) error {
	data, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, File), append(data, '\n'), 0o444); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	return nil
}

// Read reads and checks dir/stream.json; (nil, nil) when there is none.
func Read(dir string) (*Record, error) {
	p := filepath.Join(dir, File)
	data, err := readfile.Following(p, MaxRecordSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("%s is not a stream record: %w", p, err)
	}
	if rec.Version != Version {
		return nil, fmt.Errorf("%s: version %d, this ocitools reads version %d", p, rec.Version, Version)
	}
	for i, l := range rec.Layers {
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", p, i, err)
		}
	}
	return &rec, nil
}

func (l *Layer) check() error {
	if err := layout.CheckDescriptor(v1.Descriptor{Digest: l.Digest, Size: l.Size}); err != nil {
		return err
	}
	if err := l.DiffID.Validate(); err != nil {
		return fmt.Errorf("diffID: %w", err)
	}
	alg, err := compress.Parse(l.Compression)
	if err != nil {
		return err
	}
	if alg.MediaType() != l.MediaType {
		return fmt.Errorf("mediaType %s does not match compression %s", l.MediaType, l.Compression)
	}
	if len(l.Spec.StorePaths) == 0 && len(l.Spec.Entries) == 0 {
		return fmt.Errorf("layer %s holds nothing", l.Digest)
	}
	if l.Spec.Root != "" {
		// A root would let a record read files outside the store.
		return fmt.Errorf("layer %s: spec.Root must be empty", l.Digest)
	}
	for _, e := range l.Spec.Entries {
		if e.Host != "" && !strings.HasPrefix(path.Clean(e.Host), StoreRoot+"/nix/store/") {
			// The builder reads `files` sources from the store only.
			return fmt.Errorf("layer %s: entry %s reads %s, which is not in the store", l.Digest, e.Path, e.Host)
		}
	}
	if len(l.Spec.Perms) > 0 {
		return fmt.Errorf("layer %s: spec.Perms must be empty (perms are recorded in perms)", l.Digest)
	}
	if _, err := l.spec(""); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	return nil
}

// Make writes layer l again to w and checks it against the record: a
// different digest, size or diff_id is an error naming the layer.
func (rec *Record) Make(w io.Writer, l *Layer, root string) error {
	alg, err := compress.Parse(l.Compression)
	if err != nil {
		return err
	}
	spec, err := l.spec(root)
	if err != nil {
		return err
	}
	for _, sp := range spec.StorePaths {
		if _, err := os.Lstat(root + sp); err != nil {
			return fmt.Errorf("streamed layer %s needs %s, which is not in the store (%w): realise the image's closure first (nix-store -r)", l.Digest, sp, err)
		}
	}
	res, err := compress.Encode(w, alg, func(w io.Writer) error { return layer.Write(w, spec) })
	if err != nil {
		return fmt.Errorf("streamed layer %s: %w", l.Digest, err)
	}
	if res.Digest != l.Digest || res.Size != l.Size || res.DiffID != l.DiffID {
		why := fmt.Sprintf("the layer was recorded by %q and made again by %q: use the ocitools that built the image (its copy programs do) or rebuild the image", rec.Generator, Generator())
		if rec.Generator == Generator() {
			why = "the same layer writer recorded it, so the store paths' contents or " + File + " changed since the image was built (nix-store --verify --check-contents tells which)"
		}
		return fmt.Errorf("streamed layer %s (%s) came out as %s (%d bytes, diff_id %s), but the image records %s (%d bytes, diff_id %s): %s; refusing to use it",
			l.Digest, l.describe(), res.Digest, res.Size, res.DiffID, l.Digest, l.Size, l.DiffID, why)
	}
	return nil
}

func (l *Layer) describe() string {
	ps := l.Spec.StorePaths
	switch len(ps) {
	case 0:
		return fmt.Sprintf("%d generated entries", len(l.Spec.Entries))
	case 1:
		return ps[0]
	}
	return fmt.Sprintf("%s and %d other store paths", ps[0], len(ps)-1)
}
