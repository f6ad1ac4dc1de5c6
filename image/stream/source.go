package stream

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ocitools/ocitools/image/layout"
)

func init() { layout.RegisterSource(open) }

// StoreRoot is prepended to store paths when making layers: "" (the real
// store), a fake store's parent in tests.
var StoreRoot = ""

// source serves one streamed layout's layers.
type source struct {
	dir    string
	rec    *Record
	byDig  map[digest.Digest]*Layer
	shared *made
}

func open(dir string) (layout.BlobSource, error) {
	rec, err := Read(dir)
	if err != nil || rec == nil {
		return nil, err
	}
	s := &source{dir: dir, rec: rec, byDig: map[digest.Digest]*Layer{}, shared: cache}
	for i := range rec.Layers {
		s.byDig[rec.Layers[i].Digest] = &rec.Layers[i]
	}
	return s, nil
}

// made keeps each layer made in this process, once: push verifies a blob
// and then sends it (and may retry), so it is opened several times.
type made struct {
	mu    sync.Mutex
	files map[digest.Digest]*entry
}

type entry struct {
	once sync.Once
	f    *os.File // unlinked; reopened through /proc/self/fd for each reader
	err  error
}

var cache = &made{files: map[digest.Digest]*entry{}}

// OpenBlob makes the layer d names (once per process) and returns a file of
// its bytes with its own read offset.
func (s *source) OpenBlob(d v1.Descriptor) (*os.File, bool, error) {
	l, ok := s.byDig[d.Digest]
	if !ok {
		return nil, false, nil
	}
	if d.Size != l.Size {
		return nil, true, fmt.Errorf("the manifest declares %d bytes, %s records %d", d.Size, File, l.Size)
	}
	s.shared.mu.Lock()
	e, ok := s.shared.files[d.Digest]
	if !ok {
		e = &entry{}
		s.shared.files[d.Digest] = e
	}
	s.shared.mu.Unlock()
	e.once.Do(func() { e.f, e.err = s.make(l) })
	if e.err != nil {
		return nil, true, e.err
	}
	f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", e.f.Fd()))
	if err != nil {
		return nil, true, fmt.Errorf("reopening streamed layer %s: %w", d.Digest, err)
	}
	return f, true, nil
}

// make writes the layer into an unlinked temporary file and checks it.
func (s *source) make(l *Layer) (*os.File, error) {
	f, err := os.CreateTemp("", "ocitools-layer-")
	if err != nil {
		return nil, fmt.Errorf("streamed layer %s: %w", l.Digest, err)
	}
	// Unlinked at once: the bytes go away with the process, whatever ends it.
	_ = os.Remove(f.Name())
	if err := s.rec.Make(f, l, StoreRoot); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.dir, File), err)
	}
	return f, nil
}
